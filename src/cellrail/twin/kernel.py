# mypy: disable-error-code="no-untyped-def, no-untyped-call"
"""All the compiled code of the twin, in one module: the event loop, its queues and heap, and the counter-based
random numbers and duration sampling it calls.

Why one module: Numba (0.68) stamps the on-disk cache of a function by the source file of that function only, so a
change in a jitted helper defined in another module would be silently ignored by a cached caller. With every
function the kernel calls in this file, editing any of them invalidates the cache (a test walks the kernel's
globals and fails if a dispatcher from another module appears).

Random numbers: every draw is a pure function of (seed, hospital key, patient number, draw slot); splitmix64 hashes
the counter, so there is no generator state to share and a patient's draws do not depend on any other patient or on
the order of events. That is what makes common random numbers hold across scenarios (see docs/validation.md).

The loop: one event heap (4-ary, on time; ties leave in an order fixed by the sequence of operations, so runs are
deterministic), FIFO queues per resource kept as linked lists, and calendars as weekday masks. A patient whose
patience runs out while waiting is removed when reaching the head of the queue or at the end-of-day sweep, and
recorded as lost at the exact moment; patience that runs out elsewhere is settled at the patient's next step.
Referrals are generated first (per hospital, from that hospital's own counter-based stream), sorted, and fed into
the loop in time order. The semantics are documented in docs/validation.md.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_INV53 = 1.0 / 9007199254740992.0

FIXED, EXPONENTIAL, LOGNORMAL, GAMMA, TRIANGULAR, UNIFORM = 0, 1, 2, 3, 4, 5


@njit(cache=True)
def splitmix64(x: Any) -> Any:  # pragma: no cover - compiled
    z = x + GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True)
def mix(key: Any, counter: int) -> Any:  # pragma: no cover - compiled
    """A new key for stream ``counter`` under ``key``."""
    return splitmix64(key ^ splitmix64(np.uint64(counter) * GOLDEN + _ONE))


@njit(cache=True)
def uniform01(key: Any, slot: int) -> float:  # pragma: no cover - compiled
    """A uniform number in (0, 1), never 0 or 1, for draw ``slot`` of stream ``key``."""
    z = splitmix64(key ^ (np.uint64(slot) + _ONE) * GOLDEN)
    return (float(z >> _S11) + 0.5) * _INV53


@njit(cache=True)
def normal_quantile(p: float) -> float:  # pragma: no cover - compiled
    """Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9)."""
    a1, a2, a3 = -3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02
    a4, a5, a6 = 1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00
    b1, b2, b3 = -5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02
    b4, b5 = 6.680131188771972e01, -1.328068155288572e01
    c1, c2, c3 = -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00
    c4, c5, c6 = -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00
    d1, d2, d3, d4 = 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00
    low = 0.02425
    if p < low:
        q = math.sqrt(-2.0 * math.log(p))
        return (((((c1 * q + c2) * q + c3) * q + c4) * q + c5) * q + c6) / (
            (((d1 * q + d2) * q + d3) * q + d4) * q + 1.0
        )
    if p > 1.0 - low:
        q = math.sqrt(-2.0 * math.log(1.0 - p))
        return -(((((c1 * q + c2) * q + c3) * q + c4) * q + c5) * q + c6) / (
            (((d1 * q + d2) * q + d3) * q + d4) * q + 1.0
        )
    q = p - 0.5
    r = q * q
    return (
        (((((a1 * r + a2) * r + a3) * r + a4) * r + a5) * r + a6)
        * q
        / (((((b1 * r + b2) * r + b3) * r + b4) * r + b5) * r + 1.0)
    )


@njit(cache=True)
def _gamma_unit(shape: float, key: Any) -> float:  # pragma: no cover - compiled
    """Gamma(shape, 1) by Marsaglia-Tsang from the counter stream ``key`` (boosted for shape < 1)."""
    boost = 1.0
    if shape < 1.0:
        boost = uniform01(key, 1_000_000) ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    for i in range(1000):
        z = normal_quantile(uniform01(key, 2 * i))
        v = 1.0 + c * z
        if v <= 0.0:
            continue
        v = v * v * v
        if math.log(uniform01(key, 2 * i + 1)) < 0.5 * z * z + d - d * v + d * math.log(v):
            return d * v * boost
    return d * boost  # not reached in practice (acceptance > 95 % per try)


@njit(cache=True)
def sample(code: int, p0: float, p1: float, p2: float, key: Any, slot: int) -> float:  # pragma: no cover
    """A duration (days) of distribution ``code`` with parameters p0..p2, from draw ``slot`` of ``key``."""
    if code == FIXED:
        return p0
    if code == GAMMA:
        if p1 < 1e-6:  # a cv this small is a fixed duration (and 1 / cv^2 would overflow)
            return p0
        shape = 1.0 / (p1 * p1)
        return _gamma_unit(shape, mix(key, slot)) * p0 / shape
    u = uniform01(key, slot)
    if code == EXPONENTIAL:
        return -p0 * math.log(u)
    if code == LOGNORMAL:
        return p0 * math.exp(p1 * normal_quantile(u))
    if code == TRIANGULAR:
        low, mode, high = p0, p1, p2
        if high <= low:
            return low
        cut = (mode - low) / (high - low)
        if u < cut:
            return low + math.sqrt(u * (high - low) * (mode - low))
        return high - math.sqrt((1.0 - u) * (high - low) * (high - mode))
    return p0 + u * (p1 - p0)  # UNIFORM


# Event types (referrals are fed from a sorted array, not through the heap)
JOIN, JOIN_SITE, DONE, WAKE, REFERRAL = 0, 1, 2, 3, 4
APHERESIS, MANUFACTURING, INFUSION = 0, 1, 2
TREATED, LOST, FAILED, IN_PROGRESS = 0, 1, 2, 3
# Draw slots of a patient's stream (attempt a of manufacturing uses 8 + 4a, 9 + 4a, 10 + 4a)
S_PATIENCE, S_BRIDGING, S_WORKUP, S_SESSION, S_CRYO, S_BED, S_RUN, S_QC, S_OOS = 0, 1, 2, 3, 4, 5, 8, 9, 10
MORNING = 8.0 / 24.0  # a closed resource or courier starts at 08:00 of its next open day
_ARRIVAL_TAG = 0x41525249


@njit(cache=True)
def is_open(t: float, mask: int) -> bool:  # pragma: no cover - compiled
    return bool(((mask >> (np.int64(math.floor(t)) % 7)) & 1) == 1)


@njit(cache=True)
def next_open(t: float, mask: int) -> float:  # pragma: no cover - compiled
    """``t`` itself on an open weekday, else 08:00 of the next open one (day 0 is a Monday)."""
    if is_open(t, mask):
        return t
    day = math.floor(t)
    for ahead in range(1, 8):
        if ((mask >> (np.int64(day + ahead) % 7)) & 1) == 1:
            return day + ahead + MORNING
    return math.inf


@njit(cache=True)
def _push(ht, hv, st, t, ty, p, a):  # pragma: no cover
    """Push event (t, type, patient, aux) on a 4-ary min-heap of times (payload packed in one int64)."""
    i = st[0]
    st[0] += 1
    v = (np.int64(p) << 28) | (np.int64(a) << 3) | ty
    while i > 0:
        parent = (i - 1) >> 2
        if ht[parent] <= t:
            break
        ht[i] = ht[parent]
        hv[i] = hv[parent]
        i = parent
    ht[i] = t
    hv[i] = v


@njit(cache=True)
def _pop(ht, hv, st):  # pragma: no cover
    """The earliest event; ties leave in an order fixed by the sequence of pushes and pops (deterministic)."""
    t, v = ht[0], hv[0]
    st[0] -= 1
    n = st[0]
    if n > 0:
        lt, lv = ht[n], hv[n]
        i = 0
        while True:
            first = 4 * i + 1
            if first >= n:
                break
            c = first
            ct = ht[first]
            last = min(first + 4, n)
            for k in range(first + 1, last):
                if ht[k] < ct:
                    c = k
                    ct = ht[k]
            if lt <= ct:
                break
            ht[i] = ct
            hv[i] = hv[c]
            i = c
        ht[i] = lt
        hv[i] = lv
    return t, v & 7, v >> 28, (v >> 3) & 0x1FFFFFF


@njit(cache=True)
def _referrals(seed_key, horizon, hosp_key, rate, amp, peak, sched_start, sched_time):  # pragma: no cover
    """Referral times per hospital (Poisson with seasonality by thinning, plus scheduled ones), numbered in time
    order within each hospital, then merged in time order (ties: lower hospital index first)."""
    n_h = hosp_key.shape[0]
    cap = 16
    for h in range(n_h):
        mean = rate[h] * (1.0 + amp[h]) * horizon
        cap += int(mean + 10.0 * math.sqrt(mean) + 10.0) + (sched_start[h + 1] - sched_start[h])
    times = np.empty(cap, np.float64)
    starts = np.zeros(n_h + 1, np.int64)
    n = 0
    for h in range(n_h):
        key = mix(splitmix64(hosp_key[h] ^ seed_key), _ARRIVAL_TAG)
        top = rate[h] * (1.0 + amp[h])
        t = 0.0
        k = 0
        while top > 0.0:
            t += -math.log(uniform01(key, 2 * k)) / top
            if t > horizon:
                break
            accept = True
            if amp[h] > 0.0:
                here = rate[h] * (1.0 + amp[h] * math.cos(2.0 * math.pi * (t - peak[h]) / 365.0))
                accept = uniform01(key, 2 * k + 1) * top <= here
            k += 1
            if accept:
                if n >= times.shape[0]:
                    times = _grown(times, n)
                times[n] = t
                n += 1
        scheduled = False
        for j in range(sched_start[h], sched_start[h + 1]):
            if sched_time[j] <= horizon:
                if n >= times.shape[0]:
                    times = _grown(times, n)
                times[n] = sched_time[j]
                n += 1
                scheduled = True
        if scheduled:
            times[starts[h] : n] = np.sort(times[starts[h] : n])
        starts[h + 1] = n
    # merge the sorted blocks with a small heap of one head per hospital: O(n log H)
    out_t = np.empty(n, np.float64)
    out_h = np.empty(n, np.int64)
    out_n = np.empty(n, np.int64)
    head = starts[:n_h].copy()
    kt = np.empty(n_h, np.float64)
    kh = np.empty(n_h, np.int64)
    m = 0
    for h in range(n_h):
        if starts[h + 1] > starts[h]:
            kt[m] = times[starts[h]]
            kh[m] = h
            m += 1
    for i in range(m // 2 - 1, -1, -1):
        _sift(kt, kh, i, m)
    for i in range(n):
        h = kh[0]
        j = head[h]
        out_t[i] = times[j]
        out_h[i] = h
        out_n[i] = j - starts[h]
        head[h] = j + 1
        if j + 1 < starts[h + 1]:
            kt[0] = times[j + 1]
        else:
            m -= 1
            kt[0] = kt[m]
            kh[0] = kh[m]
        if m > 0:
            _sift(kt, kh, 0, m)
    return out_t, out_h, out_n


@njit(cache=True)
def _grown(values, n):  # pragma: no cover
    """A copy of ``values`` with room for more (the referral buffer is sized from the mean; a rare overshoot)."""
    bigger = np.empty(2 * values.shape[0] + 16, values.dtype)
    bigger[:n] = values[:n]
    return bigger


@njit(cache=True)
def _sift(kt, kh, i, m):  # pragma: no cover
    """Sift entry ``i`` down a binary min-heap of (time, hospital) of size ``m``."""
    while True:
        c = 2 * i + 1
        if c >= m:
            return
        if c + 1 < m and (kt[c + 1] < kt[c] or (kt[c + 1] == kt[c] and kh[c + 1] < kh[c])):
            c += 1
        if kt[i] < kt[c] or (kt[i] == kt[c] and kh[i] < kh[c]):
            return
        kt[i], kt[c] = kt[c], kt[i]
        kh[i], kh[c] = kh[c], kh[i]
        i = c


@njit(cache=True)
def _travel(t, start, end, legs, leg_days, leg_mask, leg_cost):  # pragma: no cover
    """Arrival time and cost of legs ``start..end``: each leg leaves on its next courier day, then takes its time."""
    cost = 0.0
    for i in range(start, end):
        leg = legs[i]
        t = next_open(t, leg_mask[leg]) + leg_days[leg]
        cost += leg_cost[leg]
    return t, cost


@njit(cache=True)
def _wait_estimate(r, busy, qlive, res_cap, res_mean):  # pragma: no cover
    """Expected wait for a unit of ``r`` if one joins now: (waiting + busy - units + 1) x mean service / units."""
    ahead = qlive[r] + busy[r] - res_cap[r] + 1
    if ahead <= 0:
        return 0.0
    return ahead * res_mean[r] / res_cap[r]


@njit(cache=True)
def _kernel(  # pragma: no cover - compiled
    seed, horizon, days, hosp_key, hosp_rate, hosp_amp, hosp_peak, sched_start, sched_time, hosp_aph, hosp_inf,
    cand_start, cand_site, cand_out_start, cand_back_start, out_legs, back_legs, leg_days, leg_mask, leg_cost,
    res_kind, res_cap, res_mask, res_site, res_dist, res_par, res_mean, site_start, site_res,
    proc_dist, proc_par, cryo, oos, re_oos, max_attempts, hazard, scope, b_share, b_hr, routing, overflow_q,
):  # fmt: skip
    seed_key = splitmix64(np.uint64(seed))
    arr, hosp, number = _referrals(seed_key, horizon, hosp_key, hosp_rate, hosp_amp, hosp_peak, sched_start, sched_time)
    n_p = arr.shape[0]
    n_r = res_cap.shape[0]
    nan = np.nan
    # per patient
    pkey = np.empty(n_p, np.uint64)
    apheresis = np.full(n_p, nan)
    site = np.full(n_p, -1, np.int64)
    m_start = np.full(n_p, nan)
    release = np.full(n_p, nan)
    infusion = np.full(n_p, nan)
    ended = np.full(n_p, nan)
    attempts = np.zeros(n_p, np.int64)
    outcome = np.full(n_p, IN_PROGRESS, np.int64)
    bridged = np.zeros(n_p, np.bool_)
    t_cost = np.zeros(n_p, np.float64)
    bed = np.zeros(n_p, np.float64)
    patience = np.full(n_p, math.inf)
    deadline = np.full(n_p, math.inf)  # end of the patient's patience for the whole journey (scope "journey")
    cand = np.full(n_p, -1, np.int64)
    waiting = np.full(n_p, -1, np.int64)
    qlimit = np.full(n_p, math.inf)  # when the patience of a waiting patient runs out in that queue
    q_next = np.full(n_p, -1, np.int64)
    # per resource
    busy = np.zeros(n_r, np.int64)
    qlive = np.zeros(n_r, np.int64)
    q_head = np.full(n_r, -1, np.int64)
    q_tail = np.full(n_r, -1, np.int64)
    wake = np.zeros(n_r, np.bool_)
    s_busy = np.zeros((n_r, days), np.float64)
    s_queue = np.zeros((n_r, days), np.float64)
    # area under busy(t) and queue(t) since ``last`` within the current day (time averages, not midnight samples)
    last = np.zeros(n_r, np.float64)
    a_busy = np.zeros(n_r, np.float64)
    a_queue = np.zeros(n_r, np.float64)
    # event heap: at most one flow event per patient and one wake-up per resource
    size = n_p + n_r + 8
    ht = np.empty(size, np.float64)
    hv = np.empty(size, np.int64)
    st = np.zeros(1, np.int64)
    joins = np.empty(2, np.int64)  # resources to dispatch after this event

    ai = 0
    day = 0
    while True:
        if ai < n_p and (st[0] == 0 or arr[ai] <= ht[0]):
            t, ty, p, a = arr[ai], REFERRAL, ai, 0
            ai += 1
        elif st[0] > 0:
            t, ty, p, a = _pop(ht, hv, st)
        else:
            break
        if t > horizon:
            break
        while day < days and day + 1 <= t:
            close = day + 1.0
            for r in range(n_r):  # close the day: its area is its time average (inline: this runs days x R times)
                dt = close - last[r]
                s_busy[r, day] = a_busy[r] + dt * busy[r]
                s_queue[r, day] = a_queue[r] + dt * qlive[r]
                last[r] = close
                a_busy[r] = 0.0
                a_queue[r] = 0.0
                if qlive[r] > 0:  # who ran out of patience during the day counted as waiting until the day's end
                    _sweep(r, day + 1.0, q_head, q_tail, q_next, waiting, qlimit, qlive, outcome, ended)
            day += 1
        n_join = 0
        enter = -1  # a resource patient p joins the queue of now
        if ty == REFERRAL:  # draw the patient's fixed traits, start the work-up
            h = hosp[p]
            pkey[p] = mix(splitmix64(hosp_key[h] ^ seed_key), number[p] + 1)
            bridged[p] = uniform01(pkey[p], S_BRIDGING) < b_share
            rate = hazard * (b_hr if bridged[p] else 1.0)
            if rate > 0.0:
                patience[p] = -math.log(uniform01(pkey[p], S_PATIENCE)) / rate
                if scope == 0:
                    deadline[p] = t + patience[p]
            w = sample(proc_dist[0], proc_par[0, 0], proc_par[0, 1], proc_par[0, 2], pkey[p], S_WORKUP)
            if w > 0.0:
                _push(ht, hv, st, t + w, JOIN, p, hosp_aph[h])
                continue
            enter = hosp_aph[h]
        elif ty == WAKE:
            wake[a] = False
            joins[0] = a
            n_join = 1
        elif ty == DONE:
            _area(a, t, busy, qlive, last, a_busy, a_queue)
            busy[a] -= 1
            joins[0] = a
            n_join = 1
            kind = res_kind[a]
            if kind != INFUSION and not _lost_by(p, t, outcome, ended, deadline):
                if kind == APHERESIS:
                    apheresis[p] = t
                    c = _choose(
                        hosp[p], t, cand_start, cand_site, cand_out_start, out_legs, leg_days, leg_mask, leg_cost,
                        site_start, site_res, res_mask, busy, qlive, res_cap, res_mean, routing, overflow_q,
                    )  # fmt: skip
                    cand[p] = c
                    there, cost = _travel(t, cand_out_start[c], cand_out_start[c + 1], out_legs, leg_days, leg_mask,
                                          leg_cost)  # fmt: skip
                    t_cost[p] += cost
                    if there > t:
                        _push(ht, hv, st, there, JOIN_SITE, p, cand_site[c])
                    else:
                        enter = _platform(cand_site[c], site_start, site_res, busy, qlive, res_cap, res_mean)
                else:  # QC release known now: its time and result are the patient's own draws
                    k = attempts[p] - 1
                    done = t + sample(
                        proc_dist[1], proc_par[1, 0], proc_par[1, 1], proc_par[1, 2], pkey[p], S_QC + 4 * k
                    )
                    # past the horizon the product is still in QC (censored); a patience that runs out before the
                    # release ends the journey then, the product is discarded
                    if done <= horizon and not _lost_by(p, done, outcome, ended, deadline):
                        if uniform01(pkey[p], S_OOS + 4 * k) < (oos if k == 0 else re_oos):
                            if attempts[p] >= max_attempts:
                                outcome[p] = FAILED
                                ended[p] = done
                            else:  # remade at the same site: back in its queue at release
                                _push(ht, hv, st, done, JOIN_SITE, p, site[p])
                        else:
                            release[p] = done
                            out = done
                            if cryo:
                                out += sample(
                                    proc_dist[2], proc_par[2, 0], proc_par[2, 1], proc_par[2, 2], pkey[p], S_CRYO
                                )
                            c = cand[p]
                            back, cost = _travel(out, cand_back_start[c], cand_back_start[c + 1], back_legs, leg_days,
                                                 leg_mask, leg_cost)  # fmt: skip
                            t_cost[p] += cost
                            _push(ht, hv, st, back, JOIN, p, hosp_inf[hosp[p]])
        else:  # JOIN or JOIN_SITE
            if _lost_by(p, t, outcome, ended, deadline):
                continue
            enter = a if ty == JOIN else _platform(a, site_start, site_res, busy, qlive, res_cap, res_mean)
        if enter >= 0:  # back of the FIFO queue
            if q_tail[enter] == -1:
                q_head[enter] = p
            else:
                q_next[q_tail[enter]] = p
            q_tail[enter] = p
            q_next[p] = -1
            waiting[p] = enter
            _area(enter, t, busy, qlive, last, a_busy, a_queue)
            qlive[enter] += 1
            qlimit[p] = deadline[p]
            if scope == 1:
                qlimit[p] = t + patience[p] if res_kind[enter] == MANUFACTURING else math.inf
            joins[n_join] = enter
            n_join += 1
        for j in range(n_join):
            r = joins[j]
            # dispatch: start the first live patients in the FIFO queue while servers are free and the node is open
            if busy[r] < res_cap[r] and qlive[r] > 0:  # the loop below may change the counts
                _area(r, t, busy, qlive, last, a_busy, a_queue)
            while busy[r] < res_cap[r] and qlive[r] > 0:
                if not is_open(t, res_mask[r]):
                    if not wake[r]:
                        wake[r] = True
                        _push(ht, hv, st, next_open(t, res_mask[r]), WAKE, 0, r)
                    break
                q = q_head[r]
                while q != -1 and (waiting[q] != r or qlimit[q] <= t):  # drop who left; patience ran out: lost
                    if waiting[q] == r:
                        _expire(q, r, waiting, qlimit, qlive, outcome, ended)
                    q = q_next[q]
                if q == -1:
                    q_head[r] = -1
                    q_tail[r] = -1
                    break
                q_head[r] = q_next[q]
                if q_head[r] == -1:
                    q_tail[r] = -1
                q_next[q] = -1
                waiting[q] = -1
                qlive[r] -= 1
                busy[r] += 1
                kind = res_kind[r]
                if kind == APHERESIS:
                    slot = S_SESSION
                elif kind == INFUSION:
                    slot = S_BED
                else:
                    slot = S_RUN + 4 * attempts[q]
                dur = sample(res_dist[r], res_par[r, 0], res_par[r, 1], res_par[r, 2], pkey[q], slot)
                if kind == MANUFACTURING:
                    if attempts[q] == 0:
                        m_start[q] = t
                    attempts[q] += 1
                    site[q] = res_site[r]
                elif kind == INFUSION:
                    infusion[q] = t
                    outcome[q] = TREATED
                    ended[q] = t
                    bed[q] = dur
                _push(ht, hv, st, t + dur, DONE, q, r)
    while day < days:
        end = min(day + 1.0, horizon)
        for r in range(n_r):
            _area(r, end, busy, qlive, last, a_busy, a_queue)
            s_busy[r, day] = a_busy[r] / (end - day)  # the last day may be partial
            s_queue[r, day] = a_queue[r] / (end - day)
            a_busy[r] = 0.0
            a_queue[r] = 0.0
            if qlive[r] > 0:
                _sweep(r, end, q_head, q_tail, q_next, waiting, qlimit, qlive, outcome, ended)
        day += 1
    for p in range(n_p):  # patience that ran out in a run, in QC or on the road, after the last event
        _lost_by(p, horizon, outcome, ended, deadline)
    return (hosp, number, arr, apheresis, site, m_start, release, infusion, ended, attempts, outcome, bridged, t_cost,
            bed, s_busy, s_queue)  # fmt: skip


@njit(cache=True, inline="always")
def _area(r, t, busy, qlive, last, a_busy, a_queue):  # pragma: no cover
    """Add the area under resource ``r``'s busy servers and queue since its last change, up to ``t``: called before
    every change, so the daily series are exact time averages (midnight samples missed short services)."""
    dt = t - last[r]
    if dt > 0.0:
        a_busy[r] += dt * busy[r]
        a_queue[r] += dt * qlive[r]
        last[r] = t


@njit(cache=True)
def _expire(q, r, waiting, qlimit, qlive, outcome, ended):  # pragma: no cover
    """Patient ``q``'s patience ran out in queue ``r``: lost at the moment it ran out, not when it is noticed."""
    waiting[q] = -1
    qlive[r] -= 1
    outcome[q] = LOST
    ended[q] = qlimit[q]


@njit(cache=True)
def _sweep(r, t, q_head, q_tail, q_next, waiting, qlimit, qlive, outcome, ended):  # pragma: no cover
    """Unlink from queue ``r`` everyone who left it and everyone whose patience there ran out by ``t`` (lost at that
    moment): the queue is exact whenever it is sampled, without one timed event per waiting patient."""
    prev = -1
    q = q_head[r]
    while q != -1:
        nxt = q_next[q]
        gone = waiting[q] != r
        if not gone and qlimit[q] <= t:
            _expire(q, r, waiting, qlimit, qlive, outcome, ended)
            gone = True
        if gone:
            if prev == -1:
                q_head[r] = nxt
            else:
                q_next[prev] = nxt
            if q_tail[r] == q:
                q_tail[r] = prev
        else:
            prev = q
        q = nxt


@njit(cache=True)
def _lost_by(p, t, outcome, ended, deadline):  # pragma: no cover
    """True if the patient's journey is over; a patience that ran out before ``t`` ends it as a loss then."""
    if outcome[p] == IN_PROGRESS and deadline[p] <= t:
        outcome[p] = LOST
        ended[p] = deadline[p]
    return outcome[p] != IN_PROGRESS


@njit(cache=True)
def _platform(s, site_start, site_res, busy, qlive, res_cap, res_mean):  # pragma: no cover
    """The platform of site ``s`` a product joins: the first with a free unit and no queue, else the shortest
    expected wait."""
    best = site_res[site_start[s]]
    best_wait = math.inf
    for i in range(site_start[s], site_start[s + 1]):
        r = site_res[i]
        w = _wait_estimate(r, busy, qlive, res_cap, res_mean)
        if w < best_wait:
            best, best_wait = r, w
    return best


@njit(cache=True)
def _choose(  # pragma: no cover
    h, t, cand_start, cand_site, cand_out_start, out_legs, leg_days, leg_mask, leg_cost, site_start, site_res,
    res_mask, busy, qlive, res_cap, res_mean, routing, overflow_q,
):  # fmt: skip
    """The candidate a hospital sends a collection to (primary; overflow; or earliest expected start)."""
    first = cand_start[h]
    last = cand_start[h + 1]
    if last - first == 1 or routing == 0:
        return first
    if routing == 1:
        s = cand_site[first]
        backlog = 0
        for i in range(site_start[s], site_start[s + 1]):
            backlog += qlive[site_res[i]]
        if backlog < overflow_q:
            return first
    best = first
    best_start = math.inf
    for c in range(first, last):
        there, _ = _travel(t, cand_out_start[c], cand_out_start[c + 1], out_legs, leg_days, leg_mask, leg_cost)
        s = cand_site[c]
        for i in range(site_start[s], site_start[s + 1]):
            r = site_res[i]
            start = next_open(there, res_mask[r]) + _wait_estimate(r, busy, qlive, res_cap, res_mean)
            if start < best_start:
                best, best_start = c, start
    return best
