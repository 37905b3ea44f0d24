"""The store's naive UTC and the provider's Asia/Shanghai wall time convert both ways, at +8 h."""

from datetime import datetime

from campaigns.schedule import shanghai_wall_to_utc, utc_to_shanghai_wall


def test_provider_wall_time_is_eight_hours_ahead_of_the_store():
    wall = datetime(2026, 11, 30, 7, 30, 5)  # early morning in Shanghai: the day before in UTC
    assert shanghai_wall_to_utc(wall) == datetime(2026, 11, 29, 23, 30, 5)
    assert utc_to_shanghai_wall(shanghai_wall_to_utc(wall)) == wall
