"""A served worker's garbage collector: a full collection never walks all of a grown store again (D80)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import requests

from .test_workers import _small_server

FROZEN_AS_IT_GROWS = """
import gc, weakref
from ivh_mock.mock_server.serving.collector import bound_pauses

class Node:
    pass

bound_pauses(limit=2_000)
gc.collect()
start = gc.get_freeze_count()
assert start > 2_000, start  # what the interpreter and its imports keep, past the limit: frozen at once

kept = [[] for _ in range(1_000)]  # growth under the limit stays where collections walk it
gc.collect()
assert gc.get_freeze_count() == start, (gc.get_freeze_count(), start)
assert len(gc.get_objects(generation=2)) >= 1_000

node = Node()  # past it, it is frozen: the next full collection walks none of it
kept += [node] + [[] for _ in range(3_000)]
gc.collect()
assert gc.get_freeze_count() >= start + 4_000, (gc.get_freeze_count(), start)
assert len(gc.get_objects(generation=2)) < 100, len(gc.get_objects(generation=2))

watch = weakref.ref(node)  # a frozen object is still freed once nothing refers to it
del node, kept[1_000]
assert watch() is None

a, b = Node(), Node()  # a cycle made after the freeze, then dropped, is collected
a.b, b.a = b, a
watch = weakref.ref(a)
del a, b
gc.collect()
assert watch() is None
print("ok")
"""


def test_a_full_collection_freezes_what_it_leaves_past_the_limit_and_nothing_in_use_is_lost():
    done = subprocess.run([sys.executable, "-c", FROZEN_AS_IT_GROWS], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr


GROWING_APP = textwrap.dedent("""
    import gc, json
    kept = []

    def app(environ, start_response):  # keeps 20,000 objects a request, as a store keeps its tasks
        kept.extend([] for _ in range(20_000))
        gc.collect()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"kept": len(kept), "frozen": gc.get_freeze_count(),
                            "walked": len(gc.get_objects(generation=2))}).encode()]
""")


def test_a_served_worker_keeps_its_full_collections_to_what_came_since_the_last_freeze():
    with _small_server(1, app=GROWING_APP) as (_, port):
        answers = [json.loads(requests.get(f"http://127.0.0.1:{port}/", timeout=30).content) for _ in range(5)]
    assert answers[-1]["kept"] == 100_000
    assert all(answer["walked"] < 10_000 for answer in answers), answers  # without: 100,000 and more
    assert answers[-1]["frozen"] > 100_000, answers
