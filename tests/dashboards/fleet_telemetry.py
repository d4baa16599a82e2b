"""The fleet's side of the scenario (tests/dashboards/scenario.py): providers, the wallet and
the regions, as the bundled aggregator exports them (aggregator/region/metrics.py,
aggregator/frontdoor/metrics.py, aggregator/wallet/metrics.py), on the same minute grid.

The scenario's region-level launch and wallet counters are split by provider and by operation
(`with_fleet`), their sums per region kept, so the SLOs the scenario evaluates see the same
numbers. What happens, in UTC on 2026-03-02:

    10:17-10:25  netent (eu) fails (a provider_errors fault); its breaker opens at 10:18;
                 isolated at 10:20, rolled back at 10:22, the breaker opens again
    10:30-10:45  spribe (latam) isolated by hand; back on a 10% canary, 50% at 10:55, 100% 11:05
    10:40-10:50  latam drained by hand (weight 0): its sessions drift to eu
    11:15        evolution (eu) is down: slow, 95% errors; breaker open at 11:16 and cycling
    11:17        evolution isolated (to the end); its launches fail over to other providers;
                 the other eu providers brown out from 11:20 (launches keep failing)
    11:50-11:52  eu fails the front door's health checks: weight 0, sessions fail over to latam
    11:54        eu wallet wins time out (a wallet_timeout fault); the retry queue grows until
                 the replay of 11:58
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from controlplane.model.series import Series, labels_from

Array = npt.NDArray[np.float64]
MINUTE = 60_000
END_MS = 1_772_452_800_000  # scenario.END_MS (with_fleet checks the grids agree)
T = np.arange(END_MS - 120 * MINUTE, END_MS + 1, MINUTE, dtype=np.int64)


def at(hh_mm: str) -> int:
    """`11:17` on the scenario's day, in ms."""
    hours, minutes = (int(x) for x in hh_mm.split(":"))
    return END_MS - (12 * 60 - hours * 60 - minutes) * MINUTE


def during(start: str, end: str | None = None) -> npt.NDArray[np.bool_]:
    """From `start` up to, not including, `end` (or the end)."""
    first, until = at(start), at(end) if end else END_MS + 1
    return (first <= T) & (until > T)


# share of the region's traffic, latency median (ms) and sigma: aggregator/data/catalogue.yaml
PROVIDERS: dict[str, dict[str, tuple[float, float, float]]] = {
    "eu": {
        "pragmatic-play": (0.30, 70, 0.35),
        "evolution": (0.25, 45, 0.30),
        "netent": (0.20, 60, 0.40),
        "playngo": (0.15, 80, 0.45),
        "spribe": (0.10, 110, 0.50),
    },
    "latam": {
        "pragmatic-play": (0.35, 140, 0.40),
        "evolution": (0.30, 120, 0.35),
        "spribe": (0.20, 130, 0.50),
        "ezugi": (0.15, 90, 0.40),
    },
}
TRAFFIC = {"eu": 10.0, "latam": 6.0}  # launches per second, as in scenario.telemetry()
PROVIDER_LE = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)  # a subset of the region's buckets
WALLET_LE = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# share of wallet calls below each bucket (0.996 under 0.25 s, as the scenario's SLO data)
WALLET_CDF = (0.08, 0.35, 0.72, 0.93, 0.996, 0.999, 0.9998)
WALLET_SHARE = {"bet": 0.42, "win": 0.30, "rollback": 0.03, "balance": 0.25}
BET_DECLINED = 0.02  # RS_ERROR_NOT_ENOUGH_MONEY: a definite answer, good for the SLO
WALLET_SLOW, REPLAY = "11:54", "11:58"


def gauge(name: str, labels: Mapping[str, str], values: Array) -> Series:
    return Series(
        labels=labels_from({"__name__": name, **labels}),
        timestamps=T,
        values=np.asarray(values, dtype=np.float64),
    )


def counter(name: str, labels: Mapping[str, str], per_s: Array) -> Series:
    """A counter from 0 at START_MS growing by `per_s` (per minute-sample) per second."""
    increments = np.asarray(per_s, dtype=np.float64) * 60.0
    return gauge(name, labels, np.concatenate([[0.0], np.cumsum(increments[1:])]))


def constant(value: float) -> Array:
    return np.full(T.shape, value, dtype=np.float64)


# -- providers -----------------------------------------------------------------------------


def isolated(region: str, provider: str) -> npt.NDArray[np.bool_]:
    spells = {
        ("eu", "netent"): during("10:20", "10:22"),
        ("latam", "spribe"): during("10:30", "10:45"),
        ("eu", "evolution"): during("11:17"),
    }
    return spells.get((region, provider), np.zeros(T.shape, dtype=bool))


def error_share(region: str, provider: str) -> Array:
    """Share of provider calls that fail (5xx or timeout), while calls are sent."""
    share = constant(0.002)
    if region == "eu":
        share[during("11:20")] = 0.06  # the region browns out
        if provider == "netent":
            share[during("10:17", "10:25")] = 0.4
        if provider == "evolution":
            share[during("11:15")] = 0.95
    return share


def latency(region: str, provider: str) -> tuple[Array, Array]:
    """Median (s) and sigma of the log-normal latency over time."""
    _share, median_ms, sigma = PROVIDERS[region][provider]
    median, spread = constant(median_ms / 1000), constant(sigma)
    if region == "eu":
        median[during("11:20")] *= 1.8
        if provider == "evolution":
            median[during("11:15")], spread[during("11:15")] = 0.9, 0.8
        if provider == "netent":
            median[during("10:17", "10:25")] = 0.4
    return median, spread


def lognormal_cdf(le: float, median: Array, sigma: Array) -> Array:
    z = (math.log(le) - np.log(median)) / (sigma * math.sqrt(2))
    return np.asarray(0.5 * (1 + np.vectorize(math.erf)(z)), dtype=np.float64)


def provider_series(region: str, provider: str) -> list[Series]:
    """Calls by operation and outcome: none sent while isolated, some refused (rejected)."""
    share = PROVIDERS[region][provider][0]
    off, errors = isolated(region, provider), error_share(region, provider)
    out: list[Series] = []
    for operation, per_launch in (("launch", 1.0), ("round", 4.0)):
        calls = TRAFFIC[region] * share * per_launch
        sent = np.where(off, 0.0, calls)
        outcomes = {
            "ok": sent * (1 - errors),
            "error": sent * errors * 0.6,
            "timeout": sent * errors * 0.4,
            "rejected": np.where(off, calls * 0.2, 0.0),
        }
        labels = {"region": region, "provider": provider, "operation": operation}
        out += [
            counter("casino_provider_requests_total", {**labels, "outcome": k}, v)
            for k, v in outcomes.items()
        ]
    return out + latency_buckets(region, provider)


def latency_buckets(region: str, provider: str) -> list[Series]:
    """Round calls' latency; a timeout observes the timeout (2 s), in the 2.5 s bucket."""
    share = PROVIDERS[region][provider][0]
    rounds = np.where(isolated(region, provider), 0.0, TRAFFIC[region] * share * 4)
    median, sigma = latency(region, provider)
    timeouts = error_share(region, provider) * 0.4
    labels = {"region": region, "provider": provider, "operation": "round"}
    name = "casino_provider_request_duration_seconds"
    out = []
    for le in PROVIDER_LE:
        below = lognormal_cdf(le, median, sigma) * (1 - timeouts) + (timeouts if le > 2 else 0)
        out.append(counter(f"{name}_bucket", {**labels, "le": f"{le:g}"}, rounds * below))
    out.append(counter(f"{name}_bucket", {**labels, "le": "+Inf"}, rounds))
    return [*out, counter(f"{name}_count", labels, rounds)]


def breaker(region: str, provider: str) -> Array:
    """0 closed, 1 open, 2 half-open."""
    state = constant(0)
    if (region, provider) == ("eu", "netent"):
        state[during("10:18", "10:21")] = 1
        state[during("10:21", "10:22")] = 2
        state[during("10:22", "10:25")] = 1
        state[during("10:25", "10:26")] = 2
    if (region, provider) == ("eu", "evolution"):
        cycling = during("11:16")
        state[cycling] = np.where(((T[cycling] - at("11:16")) // MINUTE) % 3 == 2, 2, 1)
    return state


def canary(region: str, provider: str) -> Array:
    percent = constant(100)
    if (region, provider) == ("latam", "spribe"):
        percent[during("10:45", "10:55")] = 10
        percent[during("10:55", "11:05")] = 50
    return percent


def sessions(region: str, provider: str) -> Array:
    share = PROVIDERS[region][provider][0]
    base = constant(TRAFFIC[region] * 300 * share)  # about five minutes of launches
    if region == "latam":
        base[during("10:40", "10:50")] *= 0.4  # drained: only sticky sessions finish
        base[during("11:50", "11:53")] *= 1.6  # eu's players fail over
    else:
        base[during("10:40", "10:50")] *= 1.3
        base[during("11:50", "11:53")] *= 0.3
    base[isolated(region, provider)] *= 0.1
    return base


def provider_state_series(region: str, provider: str) -> list[Series]:
    where = {"region": region, "provider": provider}
    return [
        gauge("casino_circuit_breaker_state", where, breaker(region, provider)),
        gauge("casino_provider_isolated", where, isolated(region, provider).astype(float)),
        gauge("casino_provider_canary_percent", where, canary(region, provider)),
        gauge("casino_active_sessions", where, sessions(region, provider)),
    ]


def breaker_opens(region: str) -> Array:
    """Per second: each step of a breaker into open is one event in that minute."""
    opens = constant(0)
    for provider in PROVIDERS[region]:
        state = breaker(region, provider)
        opened = np.concatenate([[False], (state[1:] == 1) & (state[:-1] != 1)])
        opens += opened / 60.0
    return opens


# -- the scenario's launch and wallet counters, split ----------------------------------------


def split(base: Series, parts: Sequence[tuple[Mapping[str, str], Array]]) -> list[Series]:
    """`base`'s increments shared among `parts` by weight (label changes, weight per minute);
    the parts sum to `base`."""
    increments = np.diff(base.values, prepend=0.0)
    total = np.sum([w for _labels, w in parts], axis=0)
    total = np.where(total > 0, total, 1.0)
    labels = dict(base.labels)
    return [
        Series(
            labels=labels_from({**labels, **changes}),
            timestamps=base.timestamps,
            values=np.cumsum(increments * weight / total),
        )
        for changes, weight in parts
    ]


def launch_parts(region: str, outcome: str) -> list[tuple[Mapping[str, str], Array]]:
    """Launches by the provider that got them: an isolated provider gets none, its share
    fails over to the others; failed launches follow the providers' errors."""
    providers = PROVIDERS[region]
    off = {p: isolated(region, p) for p in providers}
    moved = np.sum([np.where(off[p], s, 0.0) for p, (s, _m, _g) in providers.items()], axis=0)
    parts: list[tuple[Mapping[str, str], Array]] = []
    for provider, (share, _median, _sigma) in providers.items():
        mine = np.where(off[provider], 0.0, share)
        if outcome == "failed":
            parts.append(({"provider": provider}, mine * error_share(region, provider)))
            continue
        parts.append(({"provider": provider}, mine))
        taken = mine / np.maximum(1 - moved, 1e-9) * moved
        parts.append(({"provider": provider, "outcome": "failover"}, taken))
    return parts


def wallet_parts(outcome: str) -> list[tuple[Mapping[str, str], Array]]:
    if outcome == "timeout":
        return [({"operation": op}, constant(0.5)) for op in ("bet", "win")]
    parts: list[tuple[Mapping[str, str], Array]] = []
    for operation, share in WALLET_SHARE.items():
        parts.append(({"operation": operation}, constant(share)))
    bet = parts[0][1]
    parts[0] = ({"operation": "bet"}, bet * (1 - BET_DECLINED))
    parts.append(({"operation": "bet", "outcome": "declined"}, bet * BET_DECLINED))
    return parts


def wallet_buckets(count: Series) -> list[Series]:
    labels = dict(count.labels)
    out = []
    bounds = [(f"{le:g}", below) for le, below in zip(WALLET_LE, WALLET_CDF, strict=True)]
    for le, below in (*bounds, ("+Inf", 1.0)):
        name = {"__name__": "casino_wallet_request_duration_seconds_bucket", "le": le}
        out.append(
            Series(
                labels=labels_from({**labels, **name}),
                timestamps=count.timestamps,
                values=count.values * below,
            )
        )
    return out


def resplit(series: Series) -> list[Series]:
    """One of the scenario's series as the aggregator exports it (by provider or operation)."""
    labels = dict(series.labels)
    name, region, outcome = labels["__name__"], labels.get("region", ""), labels.get("outcome")
    if name == "casino_game_launches_total":
        return split(series, launch_parts(region, outcome or ""))
    if name == "casino_wallet_requests_total":
        parts = split(series, wallet_parts(outcome or ""))
        if region == "eu" and outcome == "timeout":  # the slow wins of 11:54, on top
            slow = counter("x", {}, win_timeouts())
            parts = [
                replace(s, values=s.values + slow.values) if ("operation", "win") in s.labels else s
                for s in parts
            ]
        return parts
    if name == "casino_wallet_request_duration_seconds_count":
        counts = split(series, [({"operation": op}, constant(s)) for op, s in WALLET_SHARE.items()])
        return counts + [b for c in counts for b in wallet_buckets(c)]
    if name == "casino_wallet_request_duration_seconds_bucket":
        return []  # rebuilt from the counts, every bucket
    return [series]


# -- wallet, regions -------------------------------------------------------------------------


def win_timeouts() -> Array:
    return np.where(during(WALLET_SLOW), 0.15, 0.0)


def wallet_series() -> list[Series]:
    slow = during(WALLET_SLOW)
    # 9 wins a minute time out and one background retry a minute settles; the replay of
    # 11:58 settles 34 and fails 2, while the fault goes on
    replay = np.where(during(REPLAY, "11:59"), 1.0, 0.0)
    depth = np.cumsum(np.where(slow, 8.0, 0.0)) - np.cumsum(replay * 34)
    oldest = np.where(slow, (T - at(WALLET_SLOW)) / 1000.0 + 30, 0.0)
    oldest[during(REPLAY)] = (T[during(REPLAY)] - at(REPLAY)) / 1000.0 + 50
    background = np.where(slow, 1 / 60, 0.0)
    replayed = {
        ("eu", "settled"): background + replay * 34 / 60,
        ("eu", "failed"): replay * 2 / 60,
        ("latam", "settled"): constant(0),
        ("latam", "failed"): constant(0),
    }
    return [
        gauge("casino_wallet_queue_depth", {"region": "eu"}, depth),
        gauge("casino_wallet_queue_depth", {"region": "latam"}, constant(0)),
        gauge("casino_wallet_queue_oldest_age_seconds", {"region": "eu"}, oldest),
        gauge("casino_wallet_queue_oldest_age_seconds", {"region": "latam"}, constant(0)),
        *[
            counter("casino_wallet_queue_replayed_total", {"region": r, "outcome": o}, rate)
            for (r, o), rate in replayed.items()
        ],
        *operator_series(win_timeouts(), replayed["eu", "settled"]),
    ]


def operator_series(win_timeouts: Array, replayed: Array) -> list[Series]:
    """The operator wallet's own count: every call that reached it, by RS_ status; a win the
    aggregator timed out on did arrive (slowly), so its replay is answered from the ledger."""
    calls = sum(TRAFFIC.values()) * 8
    out = []
    for operation, share in WALLET_SHARE.items():
        ok = constant(calls * share)
        statuses = {"RS_OK": ok, "RS_ERROR_UNKNOWN": constant(calls * share * 0.0001)}
        if operation == "bet":
            statuses["RS_OK"] = ok * (1 - BET_DECLINED)
            statuses["RS_ERROR_NOT_ENOUGH_MONEY"] = ok * BET_DECLINED
        if operation == "win":
            statuses["RS_OK"] = ok + win_timeouts + replayed
        out += [
            counter(
                "casino_wallet_operator_requests_total", {"operation": operation, "status": k}, v
            )
            for k, v in statuses.items()
        ]
        replays = replayed if operation == "win" else constant(0)
        out.append(
            counter("casino_wallet_operator_replays_total", {"operation": operation}, replays)
        )
    return out


def region_series() -> list[Series]:
    down = {"eu": during("11:50", "11:52"), "latam": np.zeros(T.shape, dtype=bool)}
    faults = np.zeros(T.shape)  # no region_down fault: eu failed its health checks itself
    drained = {"eu": np.zeros(T.shape, dtype=bool), "latam": during("10:40", "10:50")}
    weights = {"eu": 60.0, "latam": 40.0}
    out = []
    for region in PROVIDERS:
        where = {"region": region}
        off = down[region] | drained[region]
        out += [
            gauge("casino_region_weight", where, np.where(off, 0.0, weights[region])),
            gauge("casino_region_up", where, np.where(down[region], 0.0, 1.0)),
            gauge("casino_region_down", where, faults),
            gauge("casino_region_drained", where, drained[region].astype(float)),
        ]
        events = {
            "region_failover": np.where(down[region], 4.0, 0.0),
            "breaker_open": breaker_opens(region),
            "provider_failover": failovers(region),
        }
        out += [
            counter("casino_failover_events_total", {**where, "kind": kind}, rate)
            for kind, rate in events.items()
        ]
    return out


def failovers(region: str) -> Array:
    """Launches moved to another provider per second: the failover launches."""
    moved = constant(0)
    for provider, (share, _m, _s) in PROVIDERS[region].items():
        moved += np.where(isolated(region, provider), TRAFFIC[region] * share, 0.0)
    return moved


def with_fleet(series: Sequence[Series]) -> list[Series]:
    """The scenario's series split as the aggregator labels them, and the fleet's own."""
    if any(not np.array_equal(s.timestamps, T) for s in series):
        raise ValueError("the scenario's grid moved: fleet_telemetry.T must follow it")
    fleet = [s for base in series for s in resplit(base)]
    for region, providers in PROVIDERS.items():
        for provider in providers:
            fleet += provider_series(region, provider) + provider_state_series(region, provider)
    return fleet + wallet_series() + region_series()
