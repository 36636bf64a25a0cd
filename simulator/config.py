"""`WorldConfig`: every parameter of a simulated lending world, in one frozen dataclass.

The world is a population of honest people (families, offices, public Wi-Fi, merchants) over
``days`` days, with fraud patterns planted on top (one config class per pattern, one module per
pattern) and credit default driven by behaviour and by the contact network. docs/SIMULATOR.md
explains every field; defaults give a world whose base rates sit inside the ranges of
docs/PRODUCT.md §5 (fraud 1–2 % of applications, default 3–8 % of funded loans).

Rates per person are given per 180 days and scaled to ``days``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Final

from graph.typing import PRODUCTS

PATTERNS: Final[tuple[str, ...]] = (
    "fraud_ring",
    "synthetic_identity",
    "account_takeover",
    "merchant_collusion",
    "sales_inflation",
    "intermediary_packaging",
    "device_farm",
)
"""The planted fraud patterns, in planting order. Code ``k`` in the builder is ``PATTERNS[k-1]``."""

_HIDING: Final = {"hiding": True}
"""Field metadata of the knobs that make fraud hide (docs/SIMULATOR.md, "Harder worlds")."""


def _hiding(default: Any) -> Any:
    """A hiding knob: its default leaves the world as it was before the knob existed."""
    return field(default=default, metadata=_HIDING)


@dataclass(frozen=True)
class PopulationConfig:
    """The honest population: households, work places, devices, networks and merchants.

    Args:
        household_size_probs (tuple[float, ...]): P(household has 1, 2, 3, ... members); members
            share a home address, a residential IP and, sometimes, a family device.
        family_device_prob (float): P(a household of two or more shares a family device).
        family_phone_share_prob (float): P(a household member registers another member's phone).
        circle_size (int): mean size of a social circle (friends in one city); emergency contacts
            and the latent repayment discipline are shared within circles.
        contacts_min (int): fewest emergency contacts per user.
        contacts_max (int): most emergency contacts per user.
        pre_existing_share (float): share of users who signed up before the window starts.
        max_tenure_days (int): oldest sign-up, in days before the window starts.
        employed_share (float): share of users who declare a work place (a company).
        company_size_median (float): median head count of a company.
        company_size_sigma (float): log-normal spread of company sizes; the tail makes offices
            with hundreds to thousands of honest employees behind one office IP.
        company_size_max (int): cap on a company's head count weight.
        second_phone_prob (float): P(user registers a second phone number).
        second_device_prob (float): P(user also uses a second own device).
        device_switch_prob (float): P(user changes phone during the window): honest new devices.
        emulator_share (float): share of honest devices that are emulators (developers, gamers).
        ios_share (float): share of iOS devices among honest phones.
        recycled_phone_prob (float): P(a user who signs up in the window gets a number that
            belonged to an earlier user): honest phone sharing across unrelated accounts.
        users_per_mobile_ip (int): users per carrier-grade NAT IP of a city (mobile hubs).
        users_per_wifi_ip (int): users per public Wi-Fi hotspot of a city.
        datacenter_ips (int): proxy/VPN exit IPs, at least this many.
        vpn_user_share (float): share of honest users who sometimes log in through a VPN.
        income_band_probs (tuple[float, ...]): P(hidden income band 0 (lowest) .. 4).
        merchants_per_user (float): merchants per user; each has an owner among the users.
        merchant_size_probs (tuple[float, float, float, float]): P(micro, small, medium, large).
        self_employed_share (float): share of non-owners who may apply for an SME owner loan.
        travel_prob (float): P(a login or application happens while travelling in another city).
    """

    household_size_probs: tuple[float, ...] = (0.38, 0.30, 0.20, 0.09, 0.03)
    family_device_prob: float = 0.30
    family_phone_share_prob: float = 0.03
    circle_size: int = 30
    contacts_min: int = 1
    contacts_max: int = 3
    pre_existing_share: float = 0.80
    max_tenure_days: int = 1095
    employed_share: float = 0.60
    company_size_median: float = 12.0
    company_size_sigma: float = 1.7
    company_size_max: int = 5000
    second_phone_prob: float = 0.05
    second_device_prob: float = 0.08
    device_switch_prob: float = 0.12
    emulator_share: float = 0.002
    ios_share: float = 0.25
    recycled_phone_prob: float = 0.02
    users_per_mobile_ip: int = 3000
    users_per_wifi_ip: int = 800
    datacenter_ips: int = 200
    vpn_user_share: float = 0.02
    income_band_probs: tuple[float, ...] = (0.25, 0.30, 0.25, 0.15, 0.05)
    merchants_per_user: float = 0.01
    merchant_size_probs: tuple[float, float, float, float] = (0.50, 0.30, 0.15, 0.05)
    self_employed_share: float = 0.02
    travel_prob: float = 0.03


@dataclass(frozen=True)
class BehaviourConfig:
    """Honest behaviour: logins, orders, applications, approval and repayment habits.

    Args:
        logins_per_day (float): mean logins per active user and day (activity is log-normal).
        activity_sigma (float): log-normal spread of user activity.
        orders_per_180d (float): mean orders per active user per 180 days.
        national_order_share (float): share of orders at large national merchants.
        return_rate_mean (float): mean of the per-user return propensity (a beta draw).
        bnpl_adopter_share (float): share of users who use BNPL at checkout.
        bnpl_apps_per_180d (float): BNPL applications per adopter per 180 days.
        cash_borrower_share (float): share of users who take cash loans.
        cash_apps_per_180d (float): cash-loan applications per cash borrower per 180 days.
        merchant_loan_apps_per_180d (float): merchant-loan applications per merchant owner.
        sme_apps_per_180d (float): SME-owner-loan applications per owner or self-employed user.
        big_purchase_prob (float): P(an honest BNPL purchase is a rare big-ticket item, 5–15x
            the usual amount): honest "sudden large amount" cases.
        approve_prob (float): P(the incumbent policy funded an application); only funded
            applications have repayments and a default outcome.
    """

    logins_per_day: float = 0.08
    activity_sigma: float = 0.8
    orders_per_180d: float = 8.0
    national_order_share: float = 0.30
    return_rate_mean: float = 0.06
    bnpl_adopter_share: float = 0.45
    bnpl_apps_per_180d: float = 1.5
    cash_borrower_share: float = 0.28
    cash_apps_per_180d: float = 0.7
    merchant_loan_apps_per_180d: float = 0.8
    sme_apps_per_180d: float = 0.4
    big_purchase_prob: float = 0.03
    approve_prob: float = 0.90


@dataclass(frozen=True)
class CreditConfig:
    """Credit default of honest loans: behaviour and network, never the fraud labels.

    The log-odds of default of a funded honest loan are
    ``intercept + w_discipline * -discipline + w_returns * returns + w_utilisation * log(amount /
    typical) + w_income * (2 - income_band) + w_thin * thin_file + w_network * contacts_in_default``
    where the intercept is solved so that all funded loans (fraud included) default at
    ``default_rate``.

    Args:
        default_rate (float): target share of funded loans that default (3–8 %).
        w_discipline (float): weight of the latent repayment discipline (shared in circles and
            households; it also drives visible late payments).
        w_returns (float): weight of the user's return propensity (standardised).
        w_utilisation (float): weight of log(amount / typical amount for the income band).
        w_income (float): weight of the hidden income band (lower band, more default).
        w_thin (float): extra log-odds for users with fewer than 2 orders (thin file).
        w_network (float): weight of the share of emergency contacts who default.
        late_base_logit (float): log-odds of a late instalment at average discipline.
        default_label_days (int): days past the first missed due date when the ledger marks the
            loan defaulted (DPD30); the label becomes visible then.
        grace_days (int): days after a due date when an unpaid instalment is recorded missed.
    """

    default_rate: float = 0.05
    w_discipline: float = 1.1
    w_returns: float = 0.5
    w_utilisation: float = 0.6
    w_income: float = 0.35
    w_thin: float = 0.5
    w_network: float = 2.0
    late_base_logit: float = -2.6
    default_label_days: int = 30
    grace_days: int = 7


@dataclass(frozen=True)
class LabelConfig:
    """When and whether fraud becomes known.

    Args:
        unlabelled_fraud_share (float): share of fraud applications never labelled (10–30 %).
        delay_median_days (float): median days from a fraud application to its label.
        delay_sigma (float): log-normal spread of the delay.
        delay_min_days (float): shortest delay.
        delay_max_days (float): longest delay.
        ato_delay_median_days (float): median delay for account takeover (victims complain).
        merchant_extra_days (float): extra days before a colluding merchant itself is labelled.
        cleared_share (float): share of honest applications reviewed and cleared.
        wrongly_cleared_share (float): share of unlabelled fraud applications reviewed and
            cleared by mistake (noisy negatives).
    """

    unlabelled_fraud_share: float = 0.20
    delay_median_days: float = 14.0
    delay_sigma: float = 0.7
    delay_min_days: float = 1.0
    delay_max_days: float = 90.0
    ato_delay_median_days: float = 5.0
    merchant_extra_days: float = 21.0
    cleared_share: float = 0.01
    wrongly_cleared_share: float = 0.10


@dataclass(frozen=True)
class FraudRingConfig:
    """Rings: accounts sharing small pools of devices, phones and addresses, applying for cash
    in a burst and never repaying.

    Args:
        size_min (int): fewest accounts in a ring.
        size_max (int): most accounts in a ring (sizes are log-uniform).
        devices_min (int): fewest devices in the ring's pool.
        devices_max (int): most devices in the ring's pool.
        phones_per_account (float): pool phones per account (0.4: about 2.5 accounts a phone).
        addresses_max (int): most home addresses in the pool (at least one).
        clean_device_prob (float): P(an account applies from its own clean device instead).
        aged_account_prob (float): P(an account is old (bought) with a few decoy orders).
        devices_per_account (float): when above 0, the device pool holds ``ceil(size * this)``
            devices instead of ``devices_min..devices_max`` (0.5: about two accounts a device).
        history_prob (float): P(an account shops like an honest user, at the honest order rate
            with typical tickets and returns, from its creation until the ring applies).
        bought_account_prob (float): P(an account is a real honest user's account, years old
            with its own history, household and contacts, sold to the ring), else a new one.
        new_account_days_max (int): the ring's new (not aged) accounts open between 3 and this
            many days before the ring's first application.
        apps_min (int): fewest applications per account.
        apps_max (int): most applications per account.
        burst_hours (float): all applications of a ring fall within this many hours.
        cash_share (float): share of ring applications that are cash loans (else BNPL).
        amount_median (float): median amount in CNY.
        proxy_prob (float): P(an event goes through the ring's proxy IPs, else a mobile hub).
        gps_spoof_prob (float): P(a ring spoofs GPS: scattered instead of one den).
        default_prob (float): P(a funded ring loan defaults).
    """

    size_min: int = 4
    size_max: int = 20
    devices_min: int = 1
    devices_max: int = 4
    phones_per_account: float = 0.4
    addresses_max: int = 3
    clean_device_prob: float = 0.25
    aged_account_prob: float = 0.30
    devices_per_account: float = _hiding(0.0)
    history_prob: float = _hiding(0.0)
    bought_account_prob: float = _hiding(0.0)
    new_account_days_max: int = _hiding(30)
    apps_min: int = 1
    apps_max: int = 3
    burst_hours: float = 48.0
    cash_share: float = 0.85
    amount_median: float = 8000.0
    proxy_prob: float = 0.6
    gps_spoof_prob: float = 0.3
    default_prob: float = 1.0


@dataclass(frozen=True)
class SyntheticIdentityConfig:
    """Synthetic / thin identities: new accounts with no real purchase history and recycled
    contact data (numbers and emergency contacts reused across identities).

    Args:
        identities_min (int): fewest identities one operator creates.
        identities_max (int): most identities one operator creates.
        recycled_phone_prob (float): P(the phone is a recycled number of an honest user).
        operator_phone_prob (float): P(the phone comes from the operator's small pool), else new.
        own_device_prob (float): P(an identity has its own device), else the operator's device.
        contact_list_size (int): the operator's recycled emergency-contact list (honest users).
        nurture_days_min (int): fewest days between sign-up and the first application.
        nurture_days_max (int): most days between sign-up and the first application.
        warmup_orders_max (int): most tiny warm-up orders.
        history_prob (float): P(an identity shops like an honest user while it is nurtured,
            instead of a couple of tiny warm-up orders).
        apps_min (int): fewest applications per identity.
        apps_max (int): most applications per identity.
        app_gap_days_max (int): days between an identity's consecutive applications are drawn
            from 1 to this many.
        amount_median (float): median cash amount in CNY.
        default_prob (float): P(a funded loan of a synthetic identity defaults (bust-out)).
    """

    identities_min: int = 3
    identities_max: int = 12
    recycled_phone_prob: float = 0.4
    operator_phone_prob: float = 0.3
    own_device_prob: float = 0.6
    contact_list_size: int = 4
    nurture_days_min: int = 10
    nurture_days_max: int = 60
    warmup_orders_max: int = 2
    history_prob: float = _hiding(0.0)
    apps_min: int = 1
    apps_max: int = 3
    app_gap_days_max: int = _hiding(6)
    amount_median: float = 5000.0
    default_prob: float = 0.95


@dataclass(frozen=True)
class AccountTakeoverConfig:
    """Account takeover: a long-standing good user suddenly on a new device in a far city,
    applying for a large amount.

    Args:
        victims_min (int): fewest victims one crew takes over.
        victims_max (int): most victims one crew takes over.
        crew_devices_max (int): most devices a crew uses across its victims (at least one).
        min_tenure_days (int): victims signed up at least this long before the window.
        min_orders (int): victims have at least this many orders.
        far_prob (float): P(the takeover comes from a far city (> 500 km)), else the same city.
        phone_swap_prob (float): P(the attacker also registers a new phone (SIM swap)).
        dwell_prob (float): P(the attacker waits days before applying, logging in now and then,
            so that the device is no longer brand new), else applies within hours.
        dwell_days_max (int): longest wait.
        apps_min (int): fewest applications per takeover.
        apps_max (int): most applications per takeover.
        amount_multiple_min (float): amount is at least this multiple of the victim's median.
        amount_multiple_max (float): and at most this.
        amount_floor (float): smallest takeover amount in CNY.
        default_prob (float): P(the loan is never repaid (the victim disputes it)).
    """

    victims_min: int = 3
    victims_max: int = 15
    crew_devices_max: int = 3
    min_tenure_days: int = 180
    min_orders: int = 3
    far_prob: float = 0.8
    phone_swap_prob: float = 0.3
    dwell_prob: float = 0.4
    dwell_days_max: int = 12
    apps_min: int = 1
    apps_max: int = 2
    amount_multiple_min: float = 3.0
    amount_multiple_max: float = 15.0
    amount_floor: float = 3000.0
    default_prob: float = 0.9


@dataclass(frozen=True)
class MerchantCollusionConfig:
    """Merchant collusion / BNPL cash-out: high-value BNPL purchases at a colluding merchant,
    returned or refunded to cash.

    Args:
        mules_min (int): fewest mules per colluding merchant.
        mules_max (int): most mules per colluding merchant.
        recruited_prob (float): P(a mule is an existing user), else a new account.
        aged_mule_prob (float): P(a new mule account was opened ``aged_days_min`` to
            ``aged_days_max`` days before the scheme and left to age), else 0–20 days before.
        aged_days_min (int): youngest aged mule, in days before the scheme starts.
        aged_days_max (int): oldest aged mule.
        history_prob (float): P(a new mule shops like an honest user until the scheme).
        apps_min (int): fewest BNPL purchases per mule.
        apps_max (int): most BNPL purchases per mule.
        window_days_min (int): shortest collusion window.
        window_days_max (int): longest collusion window.
        amount_median (float): median purchase in CNY.
        returned_prob (float): P(a cash-out purchase is booked as returned / refunded; the
            rest is paid out in cash off the books).
        shop_device_prob (float): P(a purchase is made on the shop's device).
        default_prob (float): P(a funded cash-out loan defaults).
    """

    mules_min: int = 5
    mules_max: int = 25
    recruited_prob: float = 0.5
    aged_mule_prob: float = _hiding(0.0)
    aged_days_min: int = _hiding(90)
    aged_days_max: int = _hiding(540)
    history_prob: float = _hiding(0.0)
    apps_min: int = 1
    apps_max: int = 4
    window_days_min: int = 30
    window_days_max: int = 60
    amount_median: float = 6000.0
    returned_prob: float = 0.5
    shop_device_prob: float = 0.3
    default_prob: float = 0.7


@dataclass(frozen=True)
class SalesInflationConfig:
    """Sales inflation before a merchant loan: brushed orders from a few fake buyers inflate
    GMV while inventory does not move, then the owner borrows against it.

    Args:
        factor_min (float): smallest GMV multiple during the window.
        factor_max (float): largest GMV multiple during the window.
        window_days_min (int): shortest inflation window before the loan.
        window_days_max (int): longest inflation window before the loan.
        buyers_min (int): fewest fake buyer accounts.
        buyers_max (int): most fake buyer accounts.
        buyer_orders_min (int): fewest orders per fake buyer.
        buyer_orders_max (int): most orders per fake buyer.
        loan_days_of_gmv (float): loan amount asked, in days of (inflated) GMV.
        sme_loan_prob (float): P(the owner also applies for an SME owner loan).
        default_prob (float): P(a funded inflated loan defaults).
    """

    factor_min: float = 1.8
    factor_max: float = 4.0
    window_days_min: int = 30
    window_days_max: int = 75
    buyers_min: int = 2
    buyers_max: int = 6
    buyer_orders_min: int = 20
    buyer_orders_max: int = 80
    loan_days_of_gmv: float = 30.0
    sme_loan_prob: float = 0.3
    default_prob: float = 0.6


@dataclass(frozen=True)
class PackagingConfig:
    """Intermediary packaging (中介包装): an agent coaches many applicants who declare the same
    work place (spelled in variants) while phones, devices and GPS are scattered.

    Args:
        applicants_min (int): fewest applicants per agency.
        applicants_max (int): most applicants per agency.
        real_company_prob (float): P(the agency declares a real honest company (hides in a hub)).
        shared_home_prob (float): P(an applicant also declares the agency's home address).
        recruited_prob (float): P(an applicant is an existing user), else a new account.
        window_days_min (int): shortest agency campaign.
        window_days_max (int): longest agency campaign.
        apps_min (int): fewest applications per applicant.
        apps_max (int): most applications per applicant.
        sme_share (float): share of SME owner loans (else cash loans).
        amount_multiple (float): packaged income inflates the amount by this multiple.
        default_prob (float): P(a funded packaged loan defaults).
    """

    applicants_min: int = 10
    applicants_max: int = 60
    real_company_prob: float = 0.3
    shared_home_prob: float = 0.4
    recruited_prob: float = 0.4
    window_days_min: int = 14
    window_days_max: int = 42
    apps_min: int = 1
    apps_max: int = 2
    sme_share: float = 0.4
    amount_multiple: float = 2.0
    default_prob: float = 0.5


@dataclass(frozen=True)
class DeviceFarmConfig:
    """Device farms and SIM pools: many accounts on few devices and numbers, emulators, all
    joining through one network in a short time.

    Args:
        accounts_min (int): fewest accounts per farm.
        accounts_max (int): most accounts per farm.
        devices_min (int): fewest devices per farm.
        devices_max (int): most devices per farm.
        emulator_prob (float): P(a farm device is an emulator).
        accounts_per_sim (float): accounts per SIM of the pool.
        ips_max (int): most datacenter IPs per farm (at least one).
        signup_days (float): accounts sign up within this many days.
        dormant_prob (float): P(an account was registered months earlier and left dormant
            (养号), so it does not look new).
        history_prob (float): P(an account shops like an honest user from its creation until
            its first application).
        apply_days (float): applications spread over this many days after sign-up.
        apps_min (int): fewest applications per account.
        apps_max (int): most applications per account.
        bnpl_share (float): share of BNPL applications (else small cash loans).
        gps_spoof_prob (float): P(an emulator reports a random city).
        default_prob (float): P(a funded farm loan defaults).
    """

    accounts_min: int = 20
    accounts_max: int = 120
    devices_min: int = 2
    devices_max: int = 8
    emulator_prob: float = 0.6
    accounts_per_sim: float = 4.0
    ips_max: int = 3
    signup_days: float = 3.0
    dormant_prob: float = 0.25
    history_prob: float = _hiding(0.0)
    apply_days: float = 28.0
    apps_min: int = 1
    apps_max: int = 2
    bnpl_share: float = 0.6
    gps_spoof_prob: float = 0.5
    default_prob: float = 0.9


def _default_mix() -> dict[str, float]:
    return {
        "fraud_ring": 0.26,
        "synthetic_identity": 0.16,
        "account_takeover": 0.12,
        "merchant_collusion": 0.14,
        "sales_inflation": 0.02,
        "intermediary_packaging": 0.16,
        "device_farm": 0.14,
    }


@dataclass(frozen=True)
class WorldConfig:
    """Everything that shapes one simulated world; the same config gives the same bytes.

    Args:
        users (int): honest users (fraud operators add their own accounts, about 1 %).
        days (int): length of the observed window. (default: ``180``)
        seed (int): seed of the one random generator every draw descends from.
        start (str): first day of the window, ISO date, UTC.
        fraud_rate (float): share of all applications that are fraud (1–2 %).
        pattern_mix (dict[str, float]): share of fraud applications per pattern; must name
            every pattern of :data:`PATTERNS` and sum to 1.
        population (PopulationConfig): the honest population.
        behaviour (BehaviourConfig): honest behaviour and the incumbent approval.
        credit (CreditConfig): the credit default model.
        labels (LabelConfig): label delays and coverage.
        fraud_ring (FraudRingConfig): pattern parameters.
        synthetic_identity (SyntheticIdentityConfig): pattern parameters.
        account_takeover (AccountTakeoverConfig): pattern parameters.
        merchant_collusion (MerchantCollusionConfig): pattern parameters.
        sales_inflation (SalesInflationConfig): pattern parameters.
        intermediary_packaging (PackagingConfig): pattern parameters.
        device_farm (DeviceFarmConfig): pattern parameters.

    Raises:
        ValueError: on a parameter outside its range, naming it.
    """

    users: int = 10_000
    days: int = 180
    seed: int = 0
    start: str = "2024-01-01"
    fraud_rate: float = 0.015
    pattern_mix: dict[str, float] = field(default_factory=_default_mix)
    population: PopulationConfig = PopulationConfig()
    behaviour: BehaviourConfig = BehaviourConfig()
    credit: CreditConfig = CreditConfig()
    labels: LabelConfig = LabelConfig()
    fraud_ring: FraudRingConfig = FraudRingConfig()
    synthetic_identity: SyntheticIdentityConfig = SyntheticIdentityConfig()
    account_takeover: AccountTakeoverConfig = AccountTakeoverConfig()
    merchant_collusion: MerchantCollusionConfig = MerchantCollusionConfig()
    sales_inflation: SalesInflationConfig = SalesInflationConfig()
    intermediary_packaging: PackagingConfig = PackagingConfig()
    device_farm: DeviceFarmConfig = DeviceFarmConfig()

    def __post_init__(self) -> None:
        if self.users < 100:
            raise ValueError(f"users must be at least 100, got {self.users}")
        if not 7 <= self.days <= 3650:
            raise ValueError(f"days must be in 7..3650, got {self.days}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        if not 0.0 < self.fraud_rate < 0.5:
            raise ValueError(f"fraud_rate must be in (0, 0.5), got {self.fraud_rate}")
        if not 0.0 < self.credit.default_rate < 0.5:
            raise ValueError(f"credit.default_rate must be in (0, 0.5), got "
                             f"{self.credit.default_rate}")
        if not 0.0 <= self.labels.unlabelled_fraud_share < 1.0:
            raise ValueError("labels.unlabelled_fraud_share must be in [0, 1), got "
                             f"{self.labels.unlabelled_fraud_share}")
        if set(self.pattern_mix) != set(PATTERNS):
            raise ValueError(f"pattern_mix must name exactly {PATTERNS}, got {self.pattern_mix}")
        total = sum(self.pattern_mix.values())
        if abs(total - 1.0) > 1e-6 or min(self.pattern_mix.values()) < 0:
            raise ValueError(f"pattern_mix must be non-negative and sum to 1, got {total}")
        for probs_name in ("household_size_probs", "income_band_probs", "merchant_size_probs"):
            probs = getattr(self.population, probs_name)
            if abs(sum(probs) - 1.0) > 1e-6:
                raise ValueError(f"population.{probs_name} must sum to 1, got {probs}")
        self._check_hiding()
        try:
            date.fromisoformat(self.start)
        except ValueError as e:
            raise ValueError(f"start must be an ISO date, got {self.start!r}") from e

    def _check_hiding(self) -> None:
        for section, name in ((self.fraud_ring, "fraud_ring"),
                              (self.synthetic_identity, "synthetic_identity"),
                              (self.merchant_collusion, "merchant_collusion"),
                              (self.device_farm, "device_farm")):
            for knob in ("history_prob", "bought_account_prob", "aged_mule_prob"):
                value = getattr(section, knob, 0.0)
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"{name}.{knob} must be in [0, 1], got {value}")
        ring = self.fraud_ring
        if ring.devices_per_account < 0:
            raise ValueError(f"fraud_ring.devices_per_account must be non-negative, got "
                             f"{ring.devices_per_account}")
        if ring.new_account_days_max <= 3:
            raise ValueError(f"fraud_ring.new_account_days_max must exceed 3, got "
                             f"{ring.new_account_days_max}")
        if self.synthetic_identity.app_gap_days_max < 1:
            raise ValueError("synthetic_identity.app_gap_days_max must be at least 1, got "
                             f"{self.synthetic_identity.app_gap_days_max}")
        mc = self.merchant_collusion
        if not 0 <= mc.aged_days_min < mc.aged_days_max:
            raise ValueError(f"merchant_collusion.aged_days_min must be non-negative and below "
                             f"aged_days_max, got {mc.aged_days_min} and {mc.aged_days_max}")

    @property
    def start_ts(self) -> int:
        """First second of the window, epoch seconds UTC."""
        d = date.fromisoformat(self.start)
        return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())

    @property
    def end_ts(self) -> int:
        """First second after the window: every event happens before it."""
        return self.start_ts + self.days * 86_400

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every parameter (written next to the data).

        Hiding knobs at their defaults are left out: they change nothing, and leaving them out
        keeps ``world.json`` of a world that uses none of them byte for byte what it was before
        they existed (so earlier worlds and work directories still match their config).
        """
        out = dataclasses.asdict(self)
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if not dataclasses.is_dataclass(section):
                continue
            for sub in dataclasses.fields(section):
                if sub.metadata.get("hiding") and getattr(section, sub.name) == sub.default:
                    del out[f.name][sub.name]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorldConfig:
        """Inverse of :meth:`to_dict`."""
        nested = {f.name: f.type for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            sub = _SUBCONFIGS.get(name)
            if sub is not None:
                kwargs[name] = sub(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in value.items()})
            elif name in nested:
                kwargs[name] = value
            else:
                raise ValueError(f"unknown WorldConfig field {name!r}")
        return cls(**kwargs)


_SUBCONFIGS: Final[dict[str, type]] = {
    "population": PopulationConfig,
    "behaviour": BehaviourConfig,
    "credit": CreditConfig,
    "labels": LabelConfig,
    "fraud_ring": FraudRingConfig,
    "synthetic_identity": SyntheticIdentityConfig,
    "account_takeover": AccountTakeoverConfig,
    "merchant_collusion": MerchantCollusionConfig,
    "sales_inflation": SalesInflationConfig,
    "intermediary_packaging": PackagingConfig,
    "device_farm": DeviceFarmConfig,
}
