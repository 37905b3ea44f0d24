from campaigns import ids


def test_ids_are_unique_and_numbered_on():
    token = ids.new_campaign_token()
    first = ids.message_ids(token, 1, 3).tolist()
    more = ids.message_ids(token, 4, 2).tolist()
    assert first == [f"{token}-0000001", f"{token}-0000002", f"{token}-0000003"]
    assert len(set(first + more)) == 5


def test_tokens_differ_between_campaigns():
    assert len({ids.new_campaign_token() for _ in range(1000)}) == 1000
