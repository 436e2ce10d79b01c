"""How an app's own tests use ivh-mock: only the fixtures, no server to start, no credentials, no sleeping."""

from ivh_mock.client import Client, parse_callback


def make_greeting_video(ivh: Client, photo_url: str, callback_url: str) -> str:
    """The app under test: ask for a talking video of a photo."""
    return ivh.phototovideonotrain(RefPhotoUrl=photo_url, DriverType="Text", InputSsml="你好，欢迎光临！",
                                   SpeechParam={"TimbreKey": "female_1", "Speed": 1.0},
                                   CallbackUrl=callback_url).task_id


def test_the_app_gets_its_video_and_its_callback(ivh_mock, ivh_client, ivh_callback_receiver):
    task_id = make_greeting_video(ivh_client, ivh_mock.sample("photo.jpg"), ivh_callback_receiver.url)
    result = ivh_client.wait(task_id)  # moves the mock's clock instead of sleeping
    assert result.succeeded and result.duration_ms == 1500 and result.subtitles_url
    [delivery] = ivh_callback_receiver.wait_for(1)
    callback = parse_callback(delivery["body"])
    assert (callback.task_id, callback.media_url) == (task_id, result.media_url)
    assert [t["status"] for t in ivh_mock.tasks()] == ["SUCCESS"]


def test_the_app_sees_a_content_safety_failure(ivh_mock, ivh_client, ivh_callback_receiver):
    ivh_mock.set_scenario(ivh_client.appkey, "content_safety")
    task_id = make_greeting_video(ivh_client, ivh_mock.sample("photo.jpg"), ivh_callback_receiver.url)
    ivh_mock.advance(60)
    assert parse_callback(ivh_callback_receiver.wait_for(1)[0]["body"]).status == "FAIL"
    assert ivh_client.getprogress(task_id).fail_code == 801005
