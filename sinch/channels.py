"""Conversation API channels, as the Batch API names them (spec §3.1)."""

from django.db import models


class Channel(models.TextChoices):
    SMS = "SMS", "SMS"
    WHATSAPP = "WHATSAPP", "WhatsApp"
    RCS = "RCS", "RCS"
    MMS = "MMS", "MMS"
    VIBERBM = "VIBERBM", "Viber Business Messages"
    MESSENGER = "MESSENGER", "Facebook Messenger"
    INSTAGRAM = "INSTAGRAM", "Instagram"
    TELEGRAM = "TELEGRAM", "Telegram"
    KAKAOTALK = "KAKAOTALK", "KakaoTalk"
    KAKAOTALKCHAT = "KAKAOTALKCHAT", "KakaoTalk Chat"
    LINE = "LINE", "LINE"
    WECHAT = "WECHAT", "WeChat"
    APPLEBC = "APPLEBC", "Apple Messages for Business"


# Channels whose identity is a phone number, sent to Sinch in E.164 with "+".
PHONE_CHANNELS = frozenset(
    {
        Channel.SMS,
        Channel.WHATSAPP,
        Channel.RCS,
        Channel.MMS,
        Channel.VIBERBM,
        Channel.KAKAOTALK,
    }
)
