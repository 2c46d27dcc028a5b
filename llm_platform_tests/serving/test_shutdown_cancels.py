"""A server shutting down cancels its requests' token loops, so generation
threads (not daemons) never hold the process open.
"""

from __future__ import annotations

import threading

import anyio

from llm_platform.serving.asgi import run_until_disconnect


async def _never_disconnects():
    await anyio.sleep_forever()


def test_a_request_cancelled_by_shutdown_sets_its_cancel_switch():
    cancel, started = threading.Event(), threading.Event()

    def work():
        started.set()
        cancel.wait(10)  # a token loop, which stops once its switch is set
        return "stopped" if cancel.is_set() else "ran to its end"

    async def main():
        with anyio.move_on_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(run_until_disconnect, _never_disconnects, cancel, work)
                while not started.is_set():
                    await anyio.sleep(0.01)
                group.cancel_scope.cancel()  # what uvicorn does to open requests past its graceful-shutdown timeout

    anyio.run(main)
    assert cancel.is_set()
