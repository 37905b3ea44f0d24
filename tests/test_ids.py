from campaigns import ids


def test_ids_are_unique_and_numbered_on():
    token = ids.new_campaign_token()
    first = ids.message_ids(token, 1, 3).tolist()
    more = ids.message_ids(token, 4, 2).tolist()
    assert first == [f"{token}-0000001", f"{token}-0000002", f"{token}-0000003"]
    assert len(set(first + more)) == 5


def test_tokens_differ_between_campaigns():
    assert len({ids.new_campaign_token() for _ in range(1000)}) == 1000


def test_a_retry_id_numbers_on_from_the_original_never_nesting():
    original = "a1b2c3d4e5f6-0000042"
    first = ids.retry_id(original, 1)
    assert first == "a1b2c3d4e5f6-0000042-r1"
    assert ids.retry_id(first, 2) == "a1b2c3d4e5f6-0000042-r2"


def test_test_send_ids_are_apart_from_message_ids():
    token = "a1b2c3d4e5f6"
    tests = {ids.id_for_test_send(token, n) for n in (1, 2, 3)}
    assert tests == {f"{token}-t1", f"{token}-t2", f"{token}-t3"}
    assert not tests & set(ids.message_ids(token, 1, 3))


def test_sending_makes_ids_without_loading_pandas():
    import subprocess
    import sys

    code = "import sys, campaigns.ids, campaigns.sending; print('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
