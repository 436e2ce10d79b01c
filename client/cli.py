"""`ivh`: submit, follow and fetch photo-to-video tasks from a shell. Credentials come from the environment.

Exit codes: 0 done; 1 the API refused the request; 2 usage or configuration error; 3 the task failed;
4 timed out waiting; 5 the server or a result file could not be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from .api import Client
from .errors import APIConnectionError, APIError, DownloadError, TaskFailedError, WaitTimeoutError
from .models import Progress

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_FAILED, EXIT_TIMEOUT, EXIT_UNREACHABLE = 0, 1, 2, 3, 4, 5
BAR_WIDTH = 30


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivh", description=__doc__.split("\n")[0],
                                     epilog="Environment: IVH_APPKEY, IVH_ACCESSTOKEN, IVH_BASE_URL.")
    parser.add_argument("--base-url", help="API base URL, e.g. http://127.0.0.1:8080 for ivh-mock "
                                           "(default: IVH_BASE_URL, else the international gateway)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    commands = parser.add_subparsers(dest="command", required=True)

    submit = commands.add_parser("submit", help="submit a photo-to-video task")
    submit.add_argument("--photo", required=True, metavar="URL", help="RefPhotoUrl")
    drive = submit.add_mutually_exclusive_group(required=True)
    drive.add_argument("--text", help="InputSsml to speak (DriverType Text; needs --timbre)")
    drive.add_argument("--audio", metavar="URL", help="InputAudioUrl (DriverType OriginalVoice)")
    submit.add_argument("--timbre", help="SpeechParam.TimbreKey, e.g. female_1")
    submit.add_argument("--speed", type=float, default=1.0, help="SpeechParam.Speed (default: %(default)s)")
    submit.add_argument("--volume", type=int, help="SpeechParam.Volume")
    submit.add_argument("--callback", metavar="URL", help="CallbackUrl")
    submit.add_argument("--scenario", help="X-Mock-Scenario (ivh-mock only)")
    submit.add_argument("--wait", action="store_true", help="wait for the task, showing its progress")
    _wait_options(submit)

    progress = commands.add_parser("progress", help="show a task's progress once")
    progress.add_argument("task_id", metavar="TASKID")

    wait = commands.add_parser("wait", help="wait for a task, showing its progress")
    wait.add_argument("task_id", metavar="TASKID")
    _wait_options(wait)

    commands.add_parser("timbres", help="list the timbres the account may use")
    return parser


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait at most (default: %(default)s)")
    parser.add_argument("--interval", type=float, default=2.0, help="first poll interval (default: %(default)s)")
    parser.add_argument("--download", metavar="FILE", help="download the video to FILE when done (implies waiting)")


def main(argv: list[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "submit" and args.text is not None and not args.timbre:
        print("ivh: --text needs --timbre", file=err)
        return EXIT_USAGE
    try:
        client = Client(base_url=args.base_url)
    except ValueError as error:
        print(f"ivh: {error}", file=err)
        return EXIT_USAGE
    try:
        return _run(client, args, out, err)
    except APIError as error:
        where = "refused before sending" if error.preflight else f"request {error.request_id}"
        print(f"ivh: error {error.code}: {error.message} ({where})", file=err)
        return EXIT_REFUSED
    except TaskFailedError as error:
        print(f"\nivh: task {error.task_id} failed: {error.fail_code} {error.fail_message}", file=err)
        return EXIT_FAILED
    except WaitTimeoutError as error:
        print(f"\nivh: {error}", file=err)
        return EXIT_TIMEOUT
    except (APIConnectionError, DownloadError) as error:
        print(f"ivh: {error}", file=err)
        return EXIT_UNREACHABLE


def _run(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.command == "timbres":
        timbres = list(client.iter_timbres())
        if args.json:
            _print_json(out, [t.raw for t in timbres])
        for timbre in [] if args.json else timbres:
            print(f"{timbre.key}\t{timbre.name}\t{','.join(timbre.languages)}\t{','.join(timbre.emotions)}", file=out)
        return EXIT_OK
    if args.command == "progress":
        _show(out, client.getprogress(args.task_id), args.json)
        return EXIT_OK
    if args.command == "submit":
        task_id = _submit(client, args, out)
        if not (args.wait or args.download):
            return EXIT_OK
    else:
        task_id = args.task_id
    done = client.wait(task_id, timeout=args.timeout, interval=args.interval, on_progress=_bar(err))
    print(file=err)
    _show(out, done, args.json)
    if args.download:
        path = client.download(done.media_url, args.download)
        print(f"downloaded {path}", file=err)
    return EXIT_OK


def _submit(client: Client, args: argparse.Namespace, out: TextIO) -> str:
    payload: dict[str, Any] = {"RefPhotoUrl": args.photo}
    if args.text is not None:
        speech: dict[str, Any] = {"TimbreKey": args.timbre, "Speed": args.speed}
        if args.volume is not None:
            speech["Volume"] = args.volume
        payload.update(DriverType="Text", InputSsml=args.text, SpeechParam=speech)
    else:
        payload.update(DriverType="OriginalVoice", InputAudioUrl=args.audio)
    if args.callback:
        payload["CallbackUrl"] = args.callback
    submitted = client.phototovideonotrain(payload, scenario=args.scenario)
    if args.json:
        _print_json(out, {"TaskId": submitted.task_id, "RequestID": submitted.request_id})
    else:
        print(submitted.task_id, file=out)
    return submitted.task_id


def _bar(err: TextIO):
    """Return an on_progress callback drawing a live bar (one line per change when not on a terminal)."""
    live = err.isatty()
    last: list[str] = []

    def draw(progress: Progress) -> None:
        filled = max(progress.progress, 0) * BAR_WIDTH // 100
        ahead = f"  {progress.array_count} ahead in the queue" if progress.status == "COMMIT" else ""
        line = (f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {max(progress.progress, 0):3d}%  "
                f"{progress.status}{ahead}")
        if line == (last[0] if last else None):
            return
        last[:] = [line]
        print(f"\r{line}\033[K" if live else line, end="" if live else "\n", file=err, flush=True)

    return draw


def _show(out: TextIO, progress: Progress, as_json: bool) -> None:
    if as_json:
        _print_json(out, {"TaskId": progress.task_id, **progress.raw})
        return
    print(f"{progress.task_id}  {progress.status}  {progress.progress}%", file=out)
    for label, value in (("queued ahead", progress.array_count if progress.status == "COMMIT" else None),
                         ("duration", f"{progress.duration_ms} ms" if progress.duration_ms else None),
                         ("video", progress.media_url), ("subtitles", progress.subtitles_url),
                         ("failed", f"{progress.fail_code} {progress.fail_message}" if progress.fail_code else None)):
        if value:
            print(f"  {label}: {value}", file=out)


def _print_json(out: TextIO, value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2), file=out)
