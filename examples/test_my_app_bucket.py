"""How an app that keeps its videos in its own bucket tests it: moto's S3 in the test process, URLs pre-signed as
in production, the mock uploading to them (the README's example)."""

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ivh_mock.client import TaskFailedError


@pytest.fixture
def s3():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="my-app-videos")
    yield s3
    server.stop()


def make_video(ivh_mock, ivh_client, s3, bucket):
    put_url = s3.generate_presigned_url("put_object", ExpiresIn=600, Params={
        "Bucket": bucket, "Key": "greeting.mp4", "ContentType": "video/mp4"})
    return ivh_client.phototovideonotrain(
        RefPhotoUrl=ivh_mock.sample("photo.jpg"), DriverType="Text", InputSsml="你好，欢迎光临！",
        SpeechParam={"TimbreKey": "female_1", "Speed": 1.0}, VideoStorageS3Url=put_url).task_id


def test_the_video_lands_in_my_bucket(ivh_mock, ivh_client, s3):
    assert ivh_client.wait(make_video(ivh_mock, ivh_client, s3, "my-app-videos")).succeeded
    video = s3.get_object(Bucket="my-app-videos", Key="greeting.mp4")
    assert video["ContentType"] == "video/mp4" and video["ContentLength"] > 10_000


def test_my_app_sees_a_refused_upload(ivh_mock, ivh_client, s3):
    with pytest.raises(TaskFailedError) as failure:
        ivh_client.wait(make_video(ivh_mock, ivh_client, s3, "a-bucket-that-is-not-there"))
    assert failure.value.fail_code == 801015 and "answered HTTP 404 NoSuchBucket" in failure.value.fail_message
