"""The provider's error codes: meaning (English and the provider's Chinese), kind, and advice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["message", "account", "transient"]

# Reconcile's note on a sent message whose record carries a status text nobody mapped; `status`
# counts messages by the text after it, so a user can report it. (Here, not in reconcile, so
# that `status` reads it without loading the client.)
UNRECOGNISED_STATUS = "unrecognised status: "


@dataclass(frozen=True)
class Code:
    code: int
    english: str
    chinese: str
    kind: Kind
    advice: str = ""

    @property
    def meaning(self) -> str:
        return f"{self.english} ({self.chinese})"


CODES: dict[int, Code] = {
    c.code: c
    for c in [
        Code(
            100,
            "parameter format error: empty field or malformed number",
            "参数格式错误",
            "message",
        ),
        Code(101, "content longer than 1000 characters", "短信内容超过1000字", "message"),
        Code(
            105,
            "appId wrong or application does not exist",
            "appId错误或应用不存在",
            "account",
            "check --app-id / ZHENZI_APP_ID",
        ),
        Code(
            106,
            "application banned",
            "应用被禁止",
            "account",
            "contact Zhenzi support to find out why the application was banned",
        ),
        Code(
            107,
            "caller IP not in the whitelist",
            "ip错误",
            "account",
            "add this machine's IP to the whitelist in the Zhenzi user centre",
        ),
        Code(
            108,
            "balance insufficient",
            "短信余额不足",
            "account",
            "top up the account in the Zhenzi user centre",
        ),
        Code(109, "daily limit for this number exceeded", "今日发送超过限额", "message"),
        Code(
            110,
            "appSecret wrong or was reset",
            "应用秘钥(AppSecret)错误",
            "account",
            "check --app-secret / ZHENZI_APP_SECRET (was it reset in the user centre?)",
        ),
        Code(
            111,
            "account does not exist",
            "账号不存在",
            "account",
            "contact Zhenzi support to open an account",
        ),
        Code(
            117,
            "templateId wrong or template not approved",
            "templateId错误,或者模板未审核",
            "account",
            "check the template id and that the template is approved",
        ),
        Code(1000, "system error at the provider", "系统位置错误", "transient"),
    ]
}


def describe(code: int) -> Code:
    """The known meaning of a code; unknown codes are treated as this message's problem."""
    return CODES.get(code) or Code(code, "unknown provider error", "未知错误", "message")
