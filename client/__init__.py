"""A thin typed client for the photo-to-video API: sign, submit, poll, wait, parse callbacks, download.

    from ivh_mock.client import Client
    ivh = Client()  # IVH_APPKEY, IVH_ACCESSTOKEN, IVH_BASE_URL
    task = ivh.phototovideonotrain(RefPhotoUrl=..., DriverType="Text", InputSsml="...",
                                   SpeechParam={"TimbreKey": "female_1", "Speed": 1.0})
    result = ivh.wait(task.task_id)
    ivh.download(result.media_url, "video.mp4")
"""

from ivh_mock.spec.signing import sign, signed_query, string_to_sign

from .api import DEFAULT_BASE_URL, Client, parse_callback
from .errors import (
                     APIConnectionError,
                     APIError,
                     AuthenticationError,
                     BalanceError,
                     CallbackError,
                     DownloadError,
                     IvhError,
                     NotFoundError,
                     OutcomeUnknownError,
                     ParameterError,
                     QuotaExceededError,
                     RateLimitedError,
                     ServerError,
                     TaskFailedError,
                     WaitTimeoutError,
)
from .models import CallbackResult, Progress, Sentence, Submitted, Timbre, TimbrePage, Word

__all__ = [
    "DEFAULT_BASE_URL", "APIConnectionError", "APIError", "AuthenticationError", "BalanceError", "CallbackError",
    "CallbackResult", "Client", "DownloadError", "IvhError", "NotFoundError", "OutcomeUnknownError",
    "ParameterError", "Progress",
    "QuotaExceededError", "RateLimitedError", "Sentence", "ServerError", "Submitted", "TaskFailedError", "Timbre",
    "TimbrePage", "WaitTimeoutError", "Word", "parse_callback", "sign", "signed_query", "string_to_sign",
]
