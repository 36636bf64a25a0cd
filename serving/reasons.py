"""Reason codes: stable identifiers with English and Chinese messages built from evidence.

A code never changes meaning once released (the approval flow and investigators key on it);
a new meaning gets a new code. Messages interpolate the :class:`serving.scoring.Signal`
params, so every sentence carries the entity and the number behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from serving.scoring import Evidence, FeatureValue, Signal

log = logging.getLogger(__name__)

ENTITY_ZH: Final[dict[str, str]] = {
    "Device": "设备",
    "Phone": "手机号",
    "Address": "地址",
    "IP": "IP",
    "Merchant": "商户",
    "User": "用户",
    "Application": "申请",
}
ENTITY_EN: Final[dict[str, str]] = {
    "Device": "device",
    "Phone": "phone",
    "Address": "address",
    "IP": "IP",
    "Merchant": "merchant",
    "User": "user",
    "Application": "application",
}
ENTITY_EN_PLURAL: Final[dict[str, str]] = {
    "Device": "devices", "Phone": "phones", "Address": "addresses", "IP": "IPs",
}

CATALOGUE: Final[dict[str, tuple[str, str]]] = {
    # -- fraud: the applicant and the graph around it ----------------------------------------
    "SELF_CONFIRMED_FRAUD": (
        "User {user} is confirmed fraud (labelled by {source})",
        "用户{user}已被确认为欺诈（标记来源：{source}）",
    ),
    "SHARED_ENTITY_FRAUD": (
        "{subject} shared with {accounts} other accounts, {fraud} confirmed fraud",
        "{subject_zh}与{accounts}个其他账户共用，其中{fraud}个已确认欺诈",
    ),
    "SHARED_ENTITY_DENSE": (
        "{subject} shared with {accounts} other accounts",
        "{subject_zh}与{accounts}个其他账户共用",
    ),
    "ATO_NEW_DEVICE": (
        "Device {display} never used by this account before ({known} known devices)",
        "设备{display}此前从未在该账户使用（已知设备{known}台）",
    ),
    "ATO_FAR_LOCATION": (
        "Applied from {city}, {km_usual:,.0f} km from the usual login area ({usual_city}) "
        "and {km_home:,.0f} km from home ({home_city})",
        "申请地点{city}距常用登录地（{usual_city}）{km_usual:,.0f}公里，"
        "距住址（{home_city}）{km_home:,.0f}公里",
    ),
    "ATO_FAR_FROM_USUAL": (
        "Applied from {city}, {km_usual:,.0f} km from the usual login area ({usual_city})",
        "申请地点{city}距常用登录地（{usual_city}）{km_usual:,.0f}公里",
    ),
    "ATO_FAR_FROM_HOME": (
        "Applied from {city}, {km_home:,.0f} km from home ({home_city})",
        "申请地点{city}距住址（{home_city}）{km_home:,.0f}公里",
    ),
    "USUAL_LOCATION": (
        "Applied from {city}, {km:,.0f} km from the account's usual login area or home",
        "申请地点{city}距该账户常用登录地或住址{km:,.0f}公里",
    ),
    "LOCATION_UNKNOWN": (
        "Applied from {city}; the account has no login history or home to compare it with",
        "申请地点{city}；该账户无登录记录或住址可供比较",
    ),
    "ATO_AMOUNT_SPIKE": (
        "Amount {amount:,.0f} {currency} is {ratio:.1f}x the user's median of {median:,.0f} "
        "over {history} past orders and applications",
        "申请金额{amount:,.0f} {currency}为该用户历史{history}笔订单及申请中位数"
        "{median:,.0f}的{ratio:.1f}倍",
    ),
    "AMOUNT_IN_LINE": (
        "Amount {amount:,.0f} {currency} is {ratio:.1f}x the user's median of {median:,.0f} "
        "over {history} past orders and applications",
        "申请金额{amount:,.0f} {currency}为该用户历史{history}笔订单及申请中位数"
        "{median:,.0f}的{ratio:.1f}倍",
    ),
    "AMOUNT_NO_HISTORY": (
        "Amount {amount:,.0f} {currency}, with no earlier order or application to compare it "
        "with",
        "申请金额{amount:,.0f} {currency}，无历史订单或申请可供比较",
    ),
    "ATO_RECENT_DEVICE": (
        "Device {display} first used by this account only {hours:,.1f} hours ago",
        "设备{display}仅于{hours:,.1f}小时前首次在该账户使用",
    ),
    "DEVICE_KNOWN": (
        "Device {display} first used by this account {days:,.0f} days ago",
        "设备{display}于{days:,.0f}天前首次在该账户使用",
    ),
    "APPLICATION_VELOCITY": (
        "{count} applications by this user in the 24 h before this one",
        "该用户在本次申请前24小时内已申请{count}次",
    ),
    "LOGIN_VELOCITY": (
        "{logins_24h} logins in the 24 h before this application, {logins_7d} in 7 days",
        "本次申请前24小时内登录{logins_24h}次，7天内登录{logins_7d}次",
    ),
    "DEVICE_APPLICATION_VELOCITY": (
        "{apps_24h} applications from device {display} in the 24 h before this one, "
        "{apps_7d} in 7 days",
        "设备{display}在本次申请前24小时内有{apps_24h}笔申请，7天内{apps_7d}笔",
    ),
    "IP_APPLICATION_VELOCITY": (
        "{apps_24h} applications from IP {display} in the 24 h before this one, "
        "{apps_7d} in 7 days",
        "IP {display}在本次申请前24小时内有{apps_24h}笔申请，7天内{apps_7d}笔",
    ),
    "ACCOUNT_FOOTPRINT": (
        "The account has used {devices} devices, {phones} phone numbers and {ips} IP addresses",
        "该账户使用过{devices}台设备、{phones}个手机号、{ips}个IP地址",
    ),
    "THIN_FILE": (
        "Thin file: account {tenure_days:,.0f} days old with {orders} orders",
        "信息薄：账户注册{tenure_days:,.0f}天，订单{orders}笔",
    ),
    "RISKY_IP": (
        "IP {display} is a {ip_kind} address",
        "IP {display}为{ip_kind}类型地址",
    ),
    "IP_KIND": (
        "IP {display} is a {ip_kind} address",
        "IP {display}为{ip_kind}类型地址",
    ),
    "EMULATOR_DEVICE": (
        "Device {display} reports an emulator",
        "设备{display}为模拟器",
    ),
    "DEVICE_OS": (
        "Device {display} reports {os}",
        "设备{display}系统为{os}",
    ),
    "MERCHANT_CONFIRMED_FRAUD": (
        "Merchant {display} is confirmed fraud",
        "商户{display}已被确认为欺诈",
    ),
    "MERCHANT_HIGH_REFUNDS": (
        "Merchant {display} saw {returned} of {orders} recent orders returned ({rate:.0%})",
        "商户{display}近期订单{orders}笔中退货{returned}笔（{rate:.0%}）",
    ),
    "MERCHANT_RETURNS": (
        "Merchant {display} saw {returned} of {orders} recent orders returned ({rate:.0%})",
        "商户{display}近期订单{orders}笔中退货{returned}笔（{rate:.0%}）",
    ),
    "MERCHANT_SALES_SPIKE": (
        "Merchant {display} recently sold {ratio:.1f}x its earlier daily average",
        "商户{display}近期日均销售额为此前日均的{ratio:.1f}倍",
    ),
    "MERCHANT_SALES": (
        "Merchant {display} recently sold {ratio:.1f}x its earlier daily average",
        "商户{display}近期日均销售额为此前日均的{ratio:.1f}倍",
    ),
    "MERCHANT_NO_SALES_DATA": (
        "Merchant {display} has no recent sales reports",
        "商户{display}近期无销售报告",
    ),
    "MERCHANT_PROFILE": (
        "Merchant {display}: {size} size, {age_days:,.0f} days on the platform, {buyers} "
        "buyers and {apps} applications",
        "商户{display}：规模{size}，入驻{age_days:,.0f}天，买家{buyers}个，申请{apps}笔",
    ),
    "MERCHANT_NOT_OWNED": (
        "Merchant {display} is not owned by the applicant",
        "商户{display}不属于申请人",
    ),
    "MERCHANT_OWNED": (
        "Merchant {display} is owned by the applicant",
        "商户{display}为申请人所有",
    ),
    # -- investigators' watchlist (serving/watchlist.py) ---------------------------------------
    **{f"WATCHLISTED_{label.upper()}": (
        f"{label_en} {{display}} is on the investigators' watchlist: {{reason}}",
        f"{label_zh}{{display}}在调查员关注名单上：{{reason}}",
    ) for label, label_en, label_zh in (
        ("Device", "Device", "设备"), ("Phone", "Phone", "手机号"),
        ("Address", "Address", "地址"), ("IP", "IP", "IP"),
        ("Merchant", "Merchant", "商户"))},
    # -- credit -------------------------------------------------------------------------------
    "SELF_DEFAULT": (
        "User {user} has defaulted before",
        "用户{user}曾发生违约",
    ),
    "LATE_REPAYMENTS": (
        "{late} of {total} past repayments late or missed",
        "历史{total}笔还款中{late}笔逾期或未还",
    ),
    "CONTACT_DEFAULT": (
        "{defaulted} of {contacts} emergency contacts in default",
        "{contacts}个紧急联系人中{defaulted}个违约",
    ),
    "CONTACT_FRAUD": (
        "{fraud} of {contacts} emergency contacts confirmed fraud",
        "{contacts}个紧急联系人中{fraud}个已确认欺诈",
    ),
    "HIGH_RETURN_RATE": (
        "{returned} of {orders} orders returned ({rate:.0%})",
        "{orders}笔订单中退货{returned}笔（{rate:.0%}）",
    ),
    "GOOD_REPAYMENT_HISTORY": (
        "{on_time} repayments on time, none late",
        "{on_time}笔还款均按时，无逾期",
    ),
    "NO_REPAYMENT_HISTORY": (
        "No past repayments",
        "无历史还款记录",
    ),
    "PURCHASE_HISTORY": (
        "{orders} orders worth {value:,.0f} {currency} at {merchants} merchants, "
        "{rate:.0%} returned",
        "在{merchants}个商户下单{orders}笔，金额{value:,.0f} {currency}，退货率{rate:.0%}",
    ),
    "ESTABLISHED_CUSTOMER": (
        "Customer for {tenure_days:,.0f} days with {orders} orders",
        "注册{tenure_days:,.0f}天，订单{orders}笔",
    ),
    # -- the policy ---------------------------------------------------------------------------
    "FRAUD_DECLINE": (
        "Fraud probability {value:.2f} at or above the decline threshold {threshold:.2f}",
        "欺诈概率{value:.2f}达到拒绝阈值{threshold:.2f}",
    ),
    "FRAUD_REVIEW": (
        "Fraud probability {value:.2f} at or above the review threshold {threshold:.2f}",
        "欺诈概率{value:.2f}达到人工审核阈值{threshold:.2f}",
    ),
    "PD_DECLINE": (
        "Probability of default {value:.1%} at or above the decline threshold {threshold:.1%}",
        "违约概率{value:.1%}达到拒绝阈值{threshold:.1%}",
    ),
    "PD_REVIEW": (
        "Probability of default {value:.1%} at or above the review threshold {threshold:.1%}",
        "违约概率{value:.1%}达到人工审核阈值{threshold:.1%}",
    ),
    "AMOUNT_ABOVE_LIMIT": (
        "Amount {amount:,.0f} above the recommended limit {limit:,.0f}",
        "申请金额{amount:,.0f}高于建议额度{limit:,.0f}",
    ),
    "NO_CREDIT_OFFER": (
        "Recommended limit {limit:,.0f} below the product minimum {minimum:,.0f}",
        "建议额度{limit:,.0f}低于产品最低额度{minimum:,.0f}",
    ),
    "DEGRADED_MODE": (
        "Graph store unavailable or slow: decided without reading it, under the degraded cap",
        "图数据库不可用或超时：未读取图数据库即作出决策，适用降级上限",
    ),
    "FRAUD_MAIN_REASON": (
        "The strongest reason against this application is a fraud signal ({reason}, weight "
        "{value:.2f} at or above {threshold:.2f}): not approved without review",
        "本申请最主要的不利原因为欺诈信号（{reason}，权重{value:.2f}达到{threshold:.2f}）："
        "须人工审核",
    ),
    "DEGRADED_AMOUNT_CAP": (
        "Amount {amount:,.0f} above the {cap:,.0f} that may be approved in degraded mode",
        "申请金额{amount:,.0f}超过降级模式下可批准的上限{cap:,.0f}",
    ),
}
"""code -> (English template, Chinese template)."""


@dataclass(frozen=True)
class Reason:
    """A reason as the verdict carries it."""

    code: str
    message_en: str
    message_zh: str
    evidence: Evidence
    weight: float


def render(signal: Signal) -> Reason:
    """Turn a signal into a reason with both messages.

    Raises:
        KeyError: if the code is not in :data:`CATALOGUE` (a programming error).
    """
    en, zh = CATALOGUE[signal.code]
    kind = ENTITY_EN.get(signal.evidence.entity_type, signal.evidence.entity_type)
    kind_zh = ENTITY_ZH.get(signal.evidence.entity_type, signal.evidence.entity_type)
    params: dict[str, FeatureValue] = {
        "display": signal.evidence.display,
        # NOTE: what the evidence names, unless the signal says it otherwise (the applicant's
        # own entities of a kind the application does not name, serving.explanations)
        "subject": f"{kind} {signal.evidence.display}",
        "subject_zh": f"{kind_zh}{signal.evidence.display}",
        "value": signal.evidence.value,
        "threshold": signal.evidence.reference,
        **signal.params,
    }
    return Reason(
        code=signal.code,
        message_en=_format(signal.code, en, params),
        message_zh=_format(signal.code, zh, params),
        evidence=signal.evidence,
        weight=signal.weight,
    )


def _format(code: str, template: str, params: Mapping[str, FeatureValue]) -> str:
    try:
        return template.format(**params)
    except (KeyError, ValueError, TypeError) as e:
        # NOTE: a wrong message must never turn a verdict into a 500; the test suite renders
        # every code from every producer, so this is a last resort that is logged loudly.
        log.error("reason %s cannot be rendered: %r", code, e)
        return f"{code}: " + ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
