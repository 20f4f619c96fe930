"""A stock yapapi 0.13 requestor, written as for the real Golem network; runs in .venv-yapapi.

    python transform.py IMAGE_TAG INPUT_FILE OUTPUT_FILE

yapapi reads ``YAGNA_APPKEY`` and ``YAGNA_API_URL`` itself; the image is named by tag and
resolved through the registry at ``GOLEM_REGISTRY_URL`` (yapapi's ``repository_url``); subnet
``public`` and payment ``erc20``/``holesky`` are yapapi's defaults, spelled out here. One task:
send INPUT_FILE, upper-case it in the container, fetch the result to OUTPUT_FILE, and read a
command's stdout. Leaving ``Golem`` terminates the agreement and accepts the invoice. The last
stdout line is one JSON object with what the test checks against yagna.
"""

import asyncio
import json
import os
import sys
from datetime import timedelta
from typing import Any

from yapapi import Golem, Task, WorkContext, events
from yapapi.payload import vm

COMMAND = (
    "tr a-z A-Z < /golem/input/in.txt > /golem/output/out.txt && wc -c < /golem/output/out.txt"
)


async def main(image_tag: str, source: str, result: str) -> dict[str, Any]:
    package = await vm.repo(image_tag=image_tag, repository_url=os.environ["GOLEM_REGISTRY_URL"])
    seen: dict[str, Any] = {"agreements": [], "invoices_accepted": []}

    def on_event(event: events.Event) -> None:
        if isinstance(event, events.AgreementConfirmed):
            seen["agreements"].append(event.agreement.id)
        elif isinstance(event, events.InvoiceAccepted):
            seen["invoices_accepted"].append(event.invoice.invoice_id)

    async def worker(ctx: WorkContext, tasks: Any) -> Any:
        async for task in tasks:
            script = ctx.new_script(timeout=timedelta(minutes=2))
            script.upload_file(source, "/golem/input/in.txt")
            ran = script.run("/bin/sh", "-c", COMMAND)
            script.download_file("/golem/output/out.txt", result)
            yield script
            task.accept_result(result=(await ran).stdout)

    golem = Golem(
        budget=1.0, subnet_tag="public", payment_driver="erc20", payment_network="holesky"
    )
    golem.add_event_consumer(on_event)
    async with golem:
        tasks = [Task(data=None)]
        async for task in golem.execute_tasks(
            worker, tasks, payload=package, max_workers=1, timeout=timedelta(minutes=3)
        ):
            seen["stdout"] = task.result
    return seen


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python transform.py IMAGE_TAG INPUT_FILE OUTPUT_FILE")
    report = asyncio.run(main(*sys.argv[1:]))
    print(json.dumps(report))
