"""Prices on the command line, and usage as one readable line."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from memalign_graph.cli.common import CliError

if TYPE_CHECKING:
    from memalign_graph.accounting import Prices, Usage


def price_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("cost (optional)")
    group.add_argument("--price-input", type=float, metavar="PRICE", help="price per million prompt tokens")
    group.add_argument("--price-output", type=float, metavar="PRICE", help="price per million completion tokens")
    return parser


def prices_from(args: argparse.Namespace) -> Prices | None:
    from memalign_graph.accounting import Prices

    given = (args.price_input, args.price_output)
    if given == (None, None):
        return None
    if None in given:
        raise CliError("--price-input and --price-output go together: give both (per million tokens)")
    if min(given) < 0:
        raise CliError("--price-input/--price-output: prices cannot be negative")
    return Prices(input_per_million=float(args.price_input), output_per_million=float(args.price_output))


def usage_line(usage: Usage, prices: Prices | None, *, judgments: int | None = None) -> str:
    """'12 LLM calls, 3,456 tokens (3,000 in / 456 out)', per judgment and with cost when known."""
    line = (
        f"{usage.calls} LLM calls, {usage.total_tokens:,} tokens "
        f"({usage.input_tokens:,} in / {usage.output_tokens:,} out)"
    )
    if judgments:
        line += f", {usage.total_tokens / judgments:,.0f} tokens and {usage.calls / judgments:.2f} calls per judgment"
    if usage.calls and not usage.total_tokens:
        line += " (the model reported no token usage)"
    if prices is not None:
        line += f", cost {prices.cost(usage):.4f}"
    return line
