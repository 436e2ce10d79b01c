"""`ivh`: submit, follow and fetch photo-to-video tasks from a shell. Credentials come from the environment.

Exit codes (EXIT_CODES): 0 done; 1 the API refused the request; 2 usage or configuration error; 3 the task failed;
4 timed out waiting; 5 the server or a result file could not be reached; 6 a submission's verdict never came back
(it may have been accepted); 130 interrupted (Ctrl-C); 143 and 129 stopped by SIGTERM or SIGHUP, as Ctrl-C stops it;
141 the output was closed early or could not be written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import secrets
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from ivh_mock import __version__
from ivh_mock.spec import deadline, jsontext

from .api import DEFAULT_BASE_URL, DOWNLOAD_MAX_BYTES, MAX_RETRIES, MAX_SECONDS, Client, partial_file, written_to
from .errors import (APIConnectionError, APIError, DownloadError, OutcomeUnknownError, TaskFailedError,
                     WaitTimeoutError)
from .models import Progress

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_FAILED, EXIT_TIMEOUT, EXIT_UNREACHABLE, EXIT_UNKNOWN = 0, 1, 2, 3, 4, 5, 6
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command Ctrl-C stopped
EXIT_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a command a closed pipe stopped
SENDING = ""  # no TaskId yet: the submission is on its way
MB = 1 << 20
EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_REFUSED: "the API refused the request (or pre-flight validation did); the code and message are printed",
    EXIT_USAGE: "usage or configuration error (e.g. no credentials)",
    EXIT_FAILED: "the task failed; FailCode and FailMessage are printed",
    EXIT_TIMEOUT: "the task did not finish within --timeout",
    EXIT_UNREACHABLE: "the server or a result file could not be reached",
    EXIT_UNKNOWN: ("the submission was sent but no verdict of the API's came back (a broken connection, a timeout, a "
                   "gateway's 5xx): it may have been accepted, and billed; check before submitting it again"),
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); a task already submitted goes on",
    128 + signal.SIGTERM: "stopped by SIGTERM (a CI job's timeout), which ends it as Ctrl-C does: a download's partial "
                          "file is removed",
    128 + signal.SIGHUP: "stopped by SIGHUP (its terminal closed), likewise",
    EXIT_CLOSED: ("the output was closed before everything was printed (a pipe into head, say), quietly, or from "
                  "the start, or could not be written (a full disk: said, with a submitted task's TaskId)"),
}
NO_CREDENTIALS = ("ivh: no credentials: set IVH_APPKEY and IVH_ACCESSTOKEN in the environment "
                  "(and --base-url or IVH_BASE_URL to choose the server)")
BAR_WIDTH = 30


def build_parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="ivh", description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Environment: IVH_APPKEY, IVH_ACCESSTOKEN, IVH_BASE_URL.\n\nExit codes:\n{codes}")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _common_options(parser, None)
    commands = parser.add_subparsers(dest="command", required=True)

    submit = _command(commands, "submit", "submit a photo-to-video task")
    submit.add_argument("--photo", required=True, metavar="URL", help="RefPhotoUrl (required)")
    drive = submit.add_mutually_exclusive_group(required=True)
    drive.add_argument("--text", help="InputSsml to speak (DriverType Text; needs --timbre)")
    drive.add_argument("--audio", metavar="URL", help="InputAudioUrl (DriverType OriginalVoice)")
    submit.add_argument("--timbre", metavar="KEY", help="SpeechParam.TimbreKey, e.g. female_1 (with --text only, as "
                                                        "--speed and --volume)")
    submit.add_argument("--speed", type=float, help="SpeechParam.Speed (default: 1.0)")
    submit.add_argument("--volume", type=int, help="SpeechParam.Volume")
    submit.add_argument("--callback", metavar="URL", help="CallbackUrl")
    submit.add_argument("--scenario", metavar="NAME", type=_scenario, help="X-Mock-Scenario (ivh-mock only)")
    submit.add_argument("--wait", action="store_true", help="wait for the task, showing its progress")
    _wait_options(submit)

    progress = _command(commands, "progress", "show a task's progress once")
    progress.add_argument("task_id", metavar="TASKID")

    wait = _command(commands, "wait", "wait for a task, showing its progress")
    wait.add_argument("task_id", metavar="TASKID")
    _wait_options(wait)

    _command(commands, "timbres", "list the timbres the account may use")
    return parser


def _command(commands, name: str, help_text: str) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help_text, description=help_text)
    _common_options(command, argparse.SUPPRESS)  # also after the command: `ivh progress ID --json`
    return command


def _common_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--base-url", metavar="URL", default=default,
                        help="API base URL, e.g. http://127.0.0.1:8080 for ivh-mock; an empty one (IVH_BASE_URL= "
                             "too) is refused (exit 2), never taken for the live API "
                             f"(default: IVH_BASE_URL, else {DEFAULT_BASE_URL})")
    parser.add_argument("--json", action="store_true", default=False if default is None else default,
                        help="print the result as one JSON document (a submission waited for: the task's end)")
    parser.add_argument("--retries", type=_retries, metavar="N", default=MAX_RETRIES if default is None else default,
                        help="send a failed call again at most N times, a submission only when it never reached "
                             f"the server (default: {MAX_RETRIES})")


def _retries(text: str) -> int:
    if not text.strip().isdecimal():  # argparse puts the option's name before the message
        raise argparse.ArgumentTypeError(f"expected a whole number of 0 or more, got {text!r}")
    return int(text)


def _scenario(text: str) -> str:
    text = text.strip(" \t")  # as the client sends it: HTTP's blanks about a header's value are none of it
    if not (text.isascii() and text.isprintable()):  # it goes in a header: one line of ASCII
        raise argparse.ArgumentTypeError(f"expected printable ASCII (a scenario's name and parameters), got {text!r}")
    return text


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_SECONDS:  # argparse puts the option's name before the message
        raise argparse.ArgumentTypeError(f"expected a number of seconds greater than 0 and at most a year "
                                         f"({MAX_SECONDS}), got {text!r}")
    return seconds


def _megabytes(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < int(text) <= 1 << 30):
        raise argparse.ArgumentTypeError(f"expected a whole number of MiB from 1, got {text!r}")
    return int(text)


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=_seconds, default=1800.0,
                        help="seconds to wait at most for the task, and again for the download (default: 1800)")
    parser.add_argument("--interval", type=_seconds, default=2.0,
                        help="first poll interval, in seconds (default: 2)")
    parser.add_argument("--download", metavar="FILE", help="download the video to FILE when done (implies waiting; "
                                                           "FILE's folder must exist)")
    parser.add_argument("--max-mb", type=_megabytes, default=DOWNLOAD_MAX_BYTES // MB, metavar="MB",
                        help=f"refuse a video larger than this many MiB, as it comes (default: "
                             f"{DOWNLOAD_MAX_BYTES // MB})")


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = sys.stdout if out is None else out, sys.stderr if err is None else err
    if err is None:  # started with stderr closed (`2>&-`): errors go nowhere, never into the output
        err = open(os.devnull, "w")
    if out is None:  # started with stdout closed (`>&-`): nothing asked for can be printed
        print("ivh: the output is closed", file=err)
        return EXIT_CLOSED
    for stream in (out, err):  # a name the terminal's encoding cannot show is escaped, never a traceback
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    submitted: list[str] = []  # the TaskId of a submission this run made once the API accepted it, SENDING before
    output = _Output(out)
    handlers = _stop_as_interrupted()
    try:
        code = _main(argv, output, err, submitted)
        output.flush()  # here, not at exit, so that a closed pipe is seen below
        return code
    except BrokenPipeError:  # the reader went away (`ivh timbres | head`): stop quietly, as other commands do
        for stream in (out, err):
            _point_at_devnull(stream)  # so that flushing at exit does not raise again
        return EXIT_CLOSED
    except _Unwritable as failure:  # a full disk, say: said, with the TaskId of a paid video
        _point_at_devnull(out)
        made = f"; task {submitted[0]} was submitted" if submitted and submitted[0] != SENDING else ""
        print(f"ivh: the output could not be written: {failure.reason}{made}", file=err)
        return EXIT_CLOSED
    except KeyboardInterrupt as stop:
        sending = "; the submission was on its way and may have been accepted (and billed): check before submitting " \
                  "it again" if submitted == [SENDING] else ""
        signum = stop.signum if isinstance(stop, _Stopped) else None
        print(f"\nivh: {'interrupted' if signum is None else f'stopped by {signal.Signals(signum).name}'}{sending}",
              file=err)
        return EXIT_INTERRUPTED if signum is None else 128 + signum
    finally:
        for number, handler in handlers.items():  # (None: one set outside Python, which cannot be set again)
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


class _Stopped(KeyboardInterrupt):
    """A stop signal taken as Ctrl-C is: what is under way unwinds (a download removes its partial file, which
    SIGTERM had left behind, `timeout`'s signal)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped(signum)


def _stop_as_interrupted() -> dict[int, Any]:
    """Take SIGTERM and SIGHUP as Ctrl-C is taken, unless ignored (`nohup`) or not in the main thread (an app calling
    main() from another); return the handlers they had."""
    handlers = {}
    for number in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread: left as they are
            if signal.getsignal(number) is not signal.SIG_IGN:
                handlers[number] = signal.signal(number, _stopped)
    return handlers


class _Unwritable(Exception):
    """The output stream refused a write (not a closed pipe, which ends the run quietly)."""

    def __init__(self, error: OSError):
        super().__init__(error)
        self.reason = error.strerror or str(error)


class _Output:
    """The output stream, its write errors told apart from every other OSError (requests' errors are OSErrors)."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._unless_refused(self._stream.write, text)

    def flush(self) -> None:
        self._unless_refused(self._stream.flush)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    @staticmethod
    def _unless_refused(call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise _Unwritable(error) from None


def _point_at_devnull(stream: TextIO) -> None:
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


# What each option that takes a text is to be given when it was given empty or blank (an unset $VARIABLE in a script):
# refused, not taken as left out (`--callback ""` had made a task with no callback, `--download ""` neither waited nor
# downloaded, each with exit 0), nor sent as it is.
GIVE = {"download": "the file to write the video to", "callback": "the URL the task's end is posted to",
        "timbre": "a TimbreKey (`ivh timbres` lists them)", "scenario": "a scenario's name"}


def _main(argv: list[str] | None, out: TextIO, err: TextIO, submitted: list[str]) -> int:
    args = build_parser().parse_args(argv)
    empty = next((name for name in GIVE if getattr(args, name, None) is not None and not getattr(args, name).strip()),
                 None)
    if empty:
        print(f"ivh: --{empty} is empty: give {GIVE[empty]}, or leave the option out", file=err)
        return EXIT_USAGE
    if args.command == "submit" and args.text is not None and not args.timbre:
        print("ivh: --text needs --timbre", file=err)
        return EXIT_USAGE
    speech = [f"--{name}" for name in ("timbre", "speed", "volume") if getattr(args, name, None) is not None]
    if args.command == "submit" and args.audio is not None and speech:  # they would change nothing: say so
        print(f"ivh: {', '.join(speech)} {'goes' if len(speech) == 1 else 'go'} with --text (SpeechParam voices "
              f"InputSsml); --audio is lip-synced as it sounds", file=err)
        return EXIT_USAGE
    unwritable = _unwritable(args.download) if getattr(args, "download", None) else None
    if unwritable:  # said before a submission, which is a paid video, and before waiting for it
        print(f"ivh: --download {args.download}: {unwritable}", file=err)
        return EXIT_USAGE
    try:
        client = Client(base_url=args.base_url, max_retries=args.retries)  # credentials from the environment
    except ValueError as error:
        missing = not (os.environ.get("IVH_APPKEY") and os.environ.get("IVH_ACCESSTOKEN"))
        print(NO_CREDENTIALS if missing else f"ivh: {error}", file=err)
        return EXIT_USAGE
    try:
        return _run(client, args, out, err, submitted)
    except APIError as error:
        where = "refused before sending" if error.preflight else f"request {error.request_id}"
        print(_plain(f"ivh: error {error.code}: {error.message} ({where})"), file=err)
        return EXIT_REFUSED
    except TaskFailedError as error:
        print("\n" + _plain(f"ivh: task {error.task_id} failed: {error.fail_code} {error.fail_message}"), file=err)
        if args.json and isinstance(error.progress, Progress):  # the task's end is the document, failed or not
            _show(out, error.progress, True)
        return EXIT_FAILED
    except WaitTimeoutError as error:
        print("\n" + _plain(f"ivh: {error}"), file=err)
        return EXIT_TIMEOUT
    except OutcomeUnknownError as error:
        print(_plain(f"ivh: {error}"), file=err)
        return EXIT_UNKNOWN
    except (APIConnectionError, DownloadError) as error:
        print(_plain(f"ivh: {error}"), file=err)
        return EXIT_UNREACHABLE


def _run(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO, submitted: list[str]) -> int:
    if args.command == "timbres":
        timbres = list(client.iter_timbres())
        if args.json:
            _print_json(out, [t.raw for t in timbres])
        for timbre in [] if args.json else timbres:
            print("\t".join(_plain(field) for field in (timbre.key, timbre.name, ",".join(timbre.languages),
                                                         ",".join(timbre.emotions))), file=out)
        return EXIT_OK
    if args.command == "progress":
        _show(out, client.getprogress(args.task_id), args.json)
        return EXIT_OK
    if args.command == "submit":
        task_id = _submit(client, args, out, err, submitted)
        if not (args.wait or args.download):
            return EXIT_OK
    else:
        task_id = args.task_id
    done = client.wait(task_id, timeout=args.timeout, interval=args.interval, on_progress=_bar(err))
    print(file=err)
    _show(out, done, args.json)
    if args.download:
        path = client.download(done.media_url, args.download, timeout=args.timeout, max_bytes=args.max_mb * MB)
        print(f"downloaded {path}", file=err)
    return EXIT_OK


def _unwritable(destination: str) -> str | None:
    """Why a download to `destination` could not be written, or None. A link is looked at where it leads, as the
    download writes through it: a link into a folder that was not there had been found writable, and said otherwise
    only once the paid task was made and waited for."""
    given = path = Path(destination)
    where = ""
    try:
        path = written_to(given)
        where = "" if path == given else ", where the link leads,"
        if path.is_dir():
            return "is a folder; name the file to write"
        if not path.parent.is_dir():
            return f"the folder {path.parent}{where} does not exist"
        # the download writes a file of its own there, then renames it to the name given: the two are tried, since
        # permissions alone do not tell (root, /proc, a read-only mount) and neither does the name's length
        probe = "." + secrets.token_hex(8)
        probe += "x" * (len(os.fsencode(path.name)) - len(probe))  # (a name's bytes as given: `$'v\\xff.mp4'` too)
        with deadline.signals_held():  # made and removed whole: a Ctrl-C between the two had left the file
            os.close(os.open(path.parent / probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(path.parent / probe)
            partial_file(path).unlink()
        if path.exists() and not path.is_file():
            return "is not a regular file"
    except OSError as error:
        return f"cannot write {path.name!r} in the folder {path.parent}{where}: {error.strerror or error}"
    return None


def _submit(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO, submitted: list[str]) -> str:
    payload: dict[str, Any] = {"RefPhotoUrl": args.photo}
    if args.text is not None:
        speech: dict[str, Any] = {"TimbreKey": args.timbre, "Speed": 1.0 if args.speed is None else args.speed}
        if args.volume is not None:
            speech["Volume"] = args.volume
        payload.update(DriverType="Text", InputSsml=args.text, SpeechParam=speech)
    else:
        payload.update(DriverType="OriginalVoice", InputAudioUrl=args.audio)
    if args.callback:
        payload["CallbackUrl"] = args.callback
    submitted.append(SENDING)  # a Ctrl-C meanwhile says so (main)
    accepted = client.phototovideonotrain(payload, scenario=args.scenario)
    submitted[-1] = accepted.task_id
    if args.json and (args.wait or args.download):  # the output is one JSON document: the task's end, which names it
        print(_plain(f"submitted {accepted.task_id} (request {accepted.request_id})"), file=err)
    elif args.json:
        _print_json(out, {"TaskId": accepted.task_id, "RequestID": accepted.request_id})
    else:
        print(_plain(accepted.task_id), file=out)
    return accepted.task_id


def _bar(err: TextIO):
    """Return an on_progress callback drawing a live bar (one line per change when not on a terminal)."""
    live = err.isatty()
    last: list[str] = []

    def draw(progress: Progress) -> None:
        shown = min(max(progress.progress, 0), 100)  # a server's 10**30 is no share of a bar to draw
        filled = shown * BAR_WIDTH // 100
        ahead = f"  {progress.array_count} ahead in the queue" if progress.status == "COMMIT" else ""
        line = _plain(f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {shown:3d}%  {progress.status}{ahead}")
        if line == (last[0] if last else None):
            return
        last[:] = [line]
        print(f"\r{line}\033[K" if live else line, end="" if live else "\n", file=err, flush=True)

    return draw


def _show(out: TextIO, progress: Progress, as_json: bool) -> None:
    if as_json:
        _print_json(out, {"TaskId": progress.task_id, **progress.raw})
        return
    # the API's Progress is -1 on FAIL: no share of the work, which the failure line below says
    percent = f"  {progress.progress}%" if progress.progress >= 0 else ""
    print(_plain(f"{progress.task_id}  {progress.status}{percent}"), file=out)
    for label, value in (("queued ahead", progress.array_count if progress.status == "COMMIT" else None),
                         ("duration", f"{progress.duration_ms} ms" if progress.duration_ms else None),
                         ("video", progress.media_url), ("subtitles", progress.subtitles_url),
                         ("failed", f"{progress.fail_code} {progress.fail_message}" if progress.fail_code else None)):
        if value:
            print(f"  {label}: {_plain(value)}", file=out)


_ESCAPED_IN_JSON = re.compile(f"[\\x7f-\\x9f{jsontext.BIDI}]")  # json escapes C0 itself
_plain = jsontext.plain  # what a server or a URL says, its control characters escaped


def _print_json(out: TextIO, value: Any) -> None:
    """`value` as JSON; json escapes C0 in strings, and DEL, C1 and the bidirectional controls (only in strings there)
    are escaped here too."""
    text = json.dumps(value, ensure_ascii=False, indent=2)
    print(_ESCAPED_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", text), file=out)
