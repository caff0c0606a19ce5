"""The bed's stand-ins for the outside world, in one process: the simulated phone and the
offline model server. They share a Board, so the offline STT hears exactly what the phone said.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from devstack.board import Board
from devstack.models import ModelServer
from devstack.phone import Phone


async def serve(args: argparse.Namespace) -> None:
    board = Board()
    phone = Phone(
        board=board,
        sip_host=args.phone_host,
        sip_port=args.phone_port,
        rtp_host=args.phone_host,
        run_dir=Path(args.run_dir),
    )
    # what the worker asked the models, per call: run_dir/models/requests.jsonl (devstack.phonelog)
    models = ModelServer(
        board=board, host=args.models_host, port=args.models_port, log_dir=Path(args.run_dir) / "models"
    )
    await phone.start()
    await models.start()  # last: its readiness is the bed's signal that both are up
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await models.stop()
    await phone.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack.fakes")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--phone-host", required=True)
    parser.add_argument("--phone-port", type=int, required=True)
    parser.add_argument("--models-host", required=True)
    parser.add_argument("--models-port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
