"""The split of an order: every transaction sums to zero in whole minor units, whatever the
amount, rates and cameo shares; a refund in any parts reverses it exactly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from backend.commerce.ledger import Split, difference

bps = st.integers(min_value=0, max_value=10000)


@given(
    amount=st.integers(min_value=0, max_value=10**12),
    fee=bps,
    commission=bps,
    shares=st.lists(st.tuples(st.integers(min_value=10, max_value=20), bps), max_size=3),
)
def test_every_split_sums_to_zero_and_nobody_gets_more_than_the_commission(
    amount, fee, commission, shares
) -> None:
    split = Split(
        fee_bps=fee, commission_bps=commission, seller_id=1, creator_id=2, cameo_shares=tuple(shares)
    )
    entries = split.amounts(amount)
    assert sum(entries.values()) == 0
    assert all(isinstance(v, int) for v in entries.values())
    paid_out = sum(v for k, v in entries.items() if k[0] in ("creator_earnings", "cameo_earnings"))
    assert 0 <= paid_out <= amount * commission // 10000
    assert all(v >= 0 for k, v in entries.items() if k[0] != "shop_payable")


@given(
    amount=st.integers(min_value=1, max_value=10**9),
    cuts=st.lists(st.floats(min_value=0, max_value=1), max_size=5),
    commission=bps,
)
def test_refunds_in_parts_reverse_exactly(amount, cuts, commission) -> None:
    split = Split(
        fee_bps=500, commission_bps=commission, seller_id=1, creator_id=2, cameo_shares=((3, 2500),)
    )
    booked = dict(split.amounts(amount))
    left = amount
    for cut in [*cuts, 1.0]:
        refund = left if cut == 1.0 else int(left * cut)
        step = difference(split.amounts(left), split.amounts(left - refund))
        assert sum(step.values()) == 0
        for key, value in step.items():
            booked[key] = booked.get(key, 0) + value
        left -= refund
    assert all(v == 0 for v in booked.values())
