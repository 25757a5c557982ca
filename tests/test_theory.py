"""elastic_des.theory against textbook values and independent formulas.

The module computes in log space; the references here use the plain
closed forms (factorials, the Erlang B recursion, M/M/1/K), which are exact
for the small cases compared and share no code with it.
"""

from __future__ import annotations

import math

import pytest
from scipy.integrate import quad

from elastic_des.theory import (
    erlang_c,
    mmc_mean_wait,
    mmc_wait_tail,
    mmck_blocking,
    mmck_distribution,
    mmck_mean_wait,
    replicas_for_slo,
)


def erlang_c_direct(c: int, a: float) -> float:
    """Erlang C from its textbook formula with factorials (offered load a < c)."""
    last = a**c / math.factorial(c) * c / (c - a)
    return last / (sum(a**k / math.factorial(k) for k in range(c)) + last)


def erlang_b_recursion(c: int, a: float) -> float:
    """Erlang B by the numerically stable recursion B(k) = a B(k-1) / (k + a B(k-1))."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def mm1k_blocking(rho: float, k: int) -> float:
    """P(system full) of an M/M/1/K queue, closed form."""
    if rho == 1:
        return 1.0 / (k + 1)
    return (1 - rho) * rho**k / (1 - rho ** (k + 1))


# -- Erlang C -------------------------------------------------------------

@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9, 0.99])
def test_erlang_c_single_server_is_utilization(rho):
    assert erlang_c(1, rho, 1.0) == pytest.approx(rho, rel=1e-12)


@pytest.mark.parametrize(
    "c, a, expected",
    [(2, 1.0, 1 / 3), (3, 2.0, 4 / 9), (2, 1.5, 9 / 14)],
)
def test_erlang_c_textbook_values(c, a, expected):
    # (2, 1): 1/3; (3, 2): (4/3 * 3) / (1 + 2 + 2 + 4) = 4/9; (2, 1.5): 4.5 / 7.
    assert erlang_c(c, a, 1.0) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("c", [1, 2, 5, 10, 25, 60])
@pytest.mark.parametrize("rho", [0.05, 0.3, 0.7, 0.9, 0.98])
def test_erlang_c_matches_direct_formula(c, rho):
    a = rho * c
    assert erlang_c(c, a, 1.0) == pytest.approx(erlang_c_direct(c, a), rel=1e-9)
    # Rates enter only through a = lambda / mu.
    assert erlang_c(c, 3.0 * a, 3.0) == pytest.approx(erlang_c_direct(c, a), rel=1e-9)


@pytest.mark.parametrize("c", [1, 7, 50, 400, 2000])
@pytest.mark.parametrize("rho", [0.5, 0.95])
def test_erlang_c_matches_erlang_b_relation(c, rho):
    # C = B / (1 - rho (1 - B)), with B from the recursion: stable for large c,
    # where factorials overflow.
    a = rho * c
    b = erlang_b_recursion(c, a)
    assert erlang_c(c, a, 1.0) == pytest.approx(b / (1 - rho * (1 - b)), rel=1e-9)


def test_erlang_c_is_one_when_unstable():
    assert erlang_c(4, 4.0, 1.0) == 1.0
    assert erlang_c(4, 10.0, 1.0) == 1.0
    assert mmc_mean_wait(4, 4.0, 1.0) == math.inf
    assert mmc_wait_tail(4, 5.0, 1.0, 100.0) == 1.0


def test_mm1_mean_wait_closed_form():
    # M/M/1: Wq = rho / (mu - lambda).
    for lam, mu in [(0.5, 1.0), (0.9, 1.0), (3.0, 4.0)]:
        assert mmc_mean_wait(1, lam, mu) == pytest.approx((lam / mu) / (mu - lam), rel=1e-12)


@pytest.mark.parametrize("c, rho", [(2, 0.5), (8, 0.9), (30, 0.8)])
def test_mmc_mean_wait_and_tail(c, rho):
    mu = 2.0
    lam = rho * c * mu
    pw = erlang_c_direct(c, lam / mu)
    assert mmc_mean_wait(c, lam, mu) == pytest.approx(pw / (c * mu - lam), rel=1e-9)
    assert mmc_wait_tail(c, lam, mu, 0.0) == pytest.approx(pw, rel=1e-9)
    t = 0.7
    assert mmc_wait_tail(c, lam, mu, t) == pytest.approx(pw * math.exp(-(c * mu - lam) * t), rel=1e-9)
    # The tail integrates to the mean wait: E[W] = int_0^inf P(W > t) dt.
    integral, _ = quad(lambda s: mmc_wait_tail(c, lam, mu, s), 0.0, math.inf)
    assert integral == pytest.approx(mmc_mean_wait(c, lam, mu), rel=1e-6)


# -- M/M/c/K --------------------------------------------------------------

@pytest.mark.parametrize("c", [1, 3, 10, 40])
@pytest.mark.parametrize("a", [0.5, 2.0, 8.0, 60.0])
def test_mmck_with_no_waiting_room_is_erlang_b(c, a):
    assert mmck_blocking(c, c, a, 1.0) == pytest.approx(erlang_b_recursion(c, a), rel=1e-9)


@pytest.mark.parametrize("rho", [0.3, 0.9, 1.0, 1.5, 4.0])
@pytest.mark.parametrize("k", [1, 2, 5, 20])
def test_mm1k_blocking_closed_form(rho, k):
    assert mmck_blocking(1, k, rho * 2.5, 2.5) == pytest.approx(mm1k_blocking(rho, k), rel=1e-9)


@pytest.mark.parametrize("c, rho", [(1, 0.5), (4, 0.7), (12, 0.9)])
def test_mmck_tends_to_mmc_as_capacity_grows(c, rho):
    lam = rho * c
    p = mmck_distribution(c, 2000, lam, 1.0)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (p >= 0).all()
    assert p[c:].sum() == pytest.approx(erlang_c(c, lam, 1.0), rel=1e-9)  # P(all busy) = Erlang C
    assert mmck_mean_wait(c, 2000, lam, 1.0) == pytest.approx(mmc_mean_wait(c, lam, 1.0), rel=1e-9)
    assert mmck_blocking(c, 2000, lam, 1.0) < 1e-12


def test_mmck_mean_wait_of_mm1k_by_hand():
    # M/M/1/2 at lambda = mu = 1: p = (1/3, 1/3, 1/3); Lq = 1/3, admitted rate 2/3, Wq = 1/2.
    assert mmck_mean_wait(1, 2, 1.0, 1.0) == pytest.approx(0.5, rel=1e-12)


def test_mmck_blocking_increases_with_load_and_decreases_with_capacity():
    loads = [mmck_blocking(4, 8, lam, 1.0) for lam in (1.0, 2.0, 4.0, 8.0)]
    assert loads == sorted(loads) and loads[0] < loads[-1]
    rooms = [mmck_blocking(4, k, 3.0, 1.0) for k in (4, 6, 10, 30)]
    assert rooms == sorted(rooms, reverse=True) and rooms[-1] < rooms[0]


# -- fleet sizing ---------------------------------------------------------

def meets_slo(replicas: int, rate: float, service_s: float, slots: int, slo_s: float, target: float) -> bool:
    return mmc_wait_tail(replicas * slots, rate, 1 / service_s, max(0.0, slo_s - service_s)) <= 1 - target


@pytest.mark.parametrize("service_s, slots, slo_s, target", [(2.0, 8, 10.0, 0.99), (5.0, 1, 5.0, 0.95), (0.5, 16, 2.0, 0.999)])
def test_replicas_for_slo_is_the_fewest_that_meet_its_criterion(service_s, slots, slo_s, target):
    previous = 0
    for rate in (0.05, 0.5, 1.0, 3.0, 10.0, 40.0, 150.0, 600.0):
        replicas = replicas_for_slo(rate, service_s, slots, slo_s, target)
        assert replicas >= previous, "more traffic never needs fewer replicas"
        assert replicas * slots > rate * service_s, "the fleet must be stable"
        assert meets_slo(replicas, rate, service_s, slots, slo_s, target)
        if replicas > 1:
            assert not meets_slo(replicas - 1, rate, service_s, slots, slo_s, target)
        previous = replicas
    assert previous > 1, "the rates tested must exercise more than the minimum"


def test_replicas_for_slo_no_traffic_needs_one():
    assert replicas_for_slo(0.0, 1.0, 4, 10.0, 0.99) == 1


@pytest.mark.parametrize(
    "args, field",
    [
        ((10.0, 1.0, 4, 0.0, 0.99), "slo_latency_s"),
        ((10.0, 1.0, 4, -1.0, 0.99), "slo_latency_s"),
        ((10.0, 1.0, 4, 10.0, 1.0), "slo_target"),
        ((10.0, 1.0, 4, 10.0, 0.0), "slo_target"),
        ((10.0, 0.0, 4, 10.0, 0.99), "mean_service_s"),
        ((10.0, 1.0, 0, 10.0, 0.99), "slots_per_replica"),
    ],
)
def test_replicas_for_slo_rejects_bad_args(args, field):
    with pytest.raises(ValueError, match=field):
        replicas_for_slo(*args)


def test_replicas_for_slo_reports_when_max_replicas_is_too_few():
    with pytest.raises(ValueError, match="max_replicas = 3"):
        replicas_for_slo(100.0, 1.0, 4, 10.0, 0.99, max_replicas=3)


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda: erlang_c(0, 1.0, 1.0), "servers"),
        (lambda: erlang_c(2.5, 1.0, 1.0), "servers"),
        (lambda: erlang_c(2, 0.0, 1.0), "arrival_rate"),
        (lambda: erlang_c(2, 1.0, -1.0), "service_rate"),
        (lambda: mmc_mean_wait(0, 1.0, 1.0), "servers"),
        (lambda: mmc_wait_tail(2, 1.0, 1.0, -1.0), "t = -1"),
        (lambda: mmck_blocking(4, 3, 1.0, 1.0), "capacity = 3"),
        (lambda: mmck_blocking(2, 4, -1.0, 1.0), "arrival_rate"),
    ],
)
def test_theory_rejects_bad_args(call, field):
    with pytest.raises(ValueError, match=field):
        call()
