"""Admin: a campaign's A/B variants and "test first" (inlines), the variants
side by side on the dashboard, and a Sender's confirmation of the winner.

The inlines are edited with the draft; once launched they are read-only.
The figures come from campaigns.tracking.ab_results, the winner from
campaigns.tracking.ab_winner; the confirmation is a POST-only view that needs
the Sender's launch permission.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from campaigns.admin.dispatch import LAUNCH_PERM
from campaigns.admin.refusals import refusal
from campaigns.authoring import variants
from campaigns.models import ABTest, Campaign, Variant
from campaigns.tracking import ab_results, ab_winner
from campaigns.tracking.ab_winner import WinnerError


class VariantFormSet(forms.BaseInlineFormSet):
    """None, or 2 to 4 variants whose shares add up to 100 %."""

    def clean(self) -> None:
        super().clean()
        kept = [
            f.cleaned_data
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        if not kept:
            return
        if not variants.MIN_VARIANTS <= len(kept) <= variants.MAX_VARIANTS:
            raise forms.ValidationError(
                f"An A/B test has 2 to 4 variants; this one has {len(kept)}. "
                "Remove them all for a campaign without a test."
            )
        total = sum(row.get("share") or 0 for row in kept)
        if total != 100:
            raise forms.ValidationError(
                f"The variants' shares add up to {total} %; make them 100 %."
            )
        template = getattr(self.instance, "template", None)
        if template is None:
            return
        own = set(template.placeholders) | {variants.FOOTER_PARAMETER}
        for row in kept:
            other = row.get("template")
            if other is None:
                continue
            if other.kind != template.kind:
                raise forms.ValidationError(
                    f"Variant {row.get('label')}: its template is a "
                    f"{other.get_kind_display()} message, the campaign's a "
                    f"{template.get_kind_display()} message."
                )
            extra = sorted(set(other.placeholders) - own)
            if extra:
                names = ", ".join(f"${{{n}}}" for n in extra)
                raise forms.ValidationError(
                    f"Variant {row.get('label')}'s template uses {names}, which "
                    "the campaign's template does not have."
                )


class ABTestFormSet(forms.BaseInlineFormSet):
    """The winner by click rate only for a campaign that tracks links (the
    campaign's form, as posted, is the instance here)."""

    def clean(self) -> None:
        super().clean()
        track = bool(getattr(self.instance, "track_links", False))
        for form in self.forms:
            data = form.cleaned_data
            if not data or data.get("DELETE"):
                continue
            problem = variants.metric_problem(data.get("metric"), track)
            if problem:
                form.add_error("metric", problem)


class DraftOnlyInline:
    """Editable while the campaign is a draft, read-only after."""

    def _draft(self, obj) -> bool:
        return obj is None or obj.status == Campaign.Status.DRAFT

    def has_add_permission(self, request, obj=None) -> bool:
        return self._draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._draft(obj) and super().has_delete_permission(request, obj)


class VariantInline(DraftOnlyInline, admin.TabularInline):
    model = Variant
    formset = VariantFormSet
    fields = ("label", "template", "share")
    extra = 0
    max_num = variants.MAX_VARIANTS
    verbose_name = "A/B variant"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "template":
            kwargs["empty_label"] = "(the campaign's template)"
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    verbose_name_plural = (
        "A/B variants (none: no test; 2 to 4: each recipient gets one, by a "
        "stable random split with these shares)"
    )


class ABTestInline(DraftOnlyInline, admin.StackedInline):
    model = ABTest
    formset = ABTestFormSet
    fields = ("test_share", "wait_minutes", "metric", "picking")
    extra = 0
    max_num = 1
    verbose_name = "A/B “test first”"
    verbose_name_plural = (
        "A/B “test first” (optional: send the variants to a share of the "
        "audience, wait, then send the winner to the rest)"
    )

    def get_formset(self, request, obj=None, **kwargs):
        """Click rate is offered only when the campaign tracks links, or is
        new, or is being saved with "track links" on (ABTestFormSet refuses
        it when the saved campaign does not track them)."""
        formset = super().get_formset(request, obj, **kwargs)
        field = formset.form.base_fields.get("metric")
        posted = request.method == "POST" and request.POST.get("track_links")
        if field is not None and obj is not None and not (obj.track_links or posted):
            keys = {m.key for m in ab_results.offered(False)}
            field.choices = [c for c in field.choices if c[0] in keys]
        return formset


def ab_context(campaign: Campaign, user=None) -> dict | None:
    """What the dashboard shows of the campaign's A/B test (None: no test)."""
    if not Variant.objects.filter(campaign=campaign).exists():
        return None  # one cheap query for every other campaign
    rows = ab_results.variant_rows(campaign)
    if not rows:
        return None
    test = ABTest.objects.filter(campaign=campaign).select_related("winner_by").first()
    comparisons = []
    for metric in ab_results.offered(campaign.track_links):
        result = ab_results.compare(metric.figures(campaign), metric.label)
        if result is not None:
            comparisons.append({"key": metric.key, "label": metric.label, "c": result})
    context = {
        "rows": rows,
        "links": campaign.track_links,
        "comparisons": comparisons,
        "test": test,
        "split": campaign.presend.get("variants") if campaign.presend else None,
    }
    if test is not None:
        due = ab_winner.pick_at(test)
        context["pick_at"] = due
        context["can_confirm"] = bool(
            user is not None
            and user.has_perm(LAUNCH_PERM)
            and not test.winner
            and campaign.status in ab_winner.PICKABLE
            and test.picking == ABTest.Picking.CONFIRM
        )
        suggestion = ab_winner.suggestion(campaign, test)
        context["suggested"] = suggestion.best if suggestion else rows[0].label
        context["confirm_url"] = reverse(
            "admin:campaigns_campaign_ab_winner", args=[campaign.pk]
        )
    return context


class ABTestAdminMixin:
    """Wire `ab_urls()` into get_urls and the inlines into `inlines`."""

    def ab_urls(self):
        return [
            path(
                "<int:pk>/ab-winner/",
                self.admin_site.admin_view(self.ab_winner_view),
                name="campaigns_campaign_ab_winner",
            )
        ]

    def get_inline_instances(self, request, obj=None):
        """On a POST, only the A/B inlines whose forms were posted are bound
        (a client posting the campaign's fields alone changes no variant)."""
        inlines = super().get_inline_instances(request, obj)
        if request.method != "POST":
            return inlines
        return [
            inline
            for inline in inlines
            if not isinstance(inline, VariantInline | ABTestInline)
            or f"{inline.get_formset(request, obj).get_default_prefix()}-TOTAL_FORMS"
            in request.POST
        ]

    @method_decorator(require_POST)
    def ab_winner_view(self, request, pk):
        """A Sender confirms the winner (the suggested one or another)."""
        campaign = get_object_or_404(Campaign, pk=pk)
        if not request.user.has_perm(LAUNCH_PERM):
            raise PermissionDenied(refusal(LAUNCH_PERM, "confirm an A/B winner"))
        label = request.POST.get("label") or None
        try:
            winner = ab_winner.pick_winner(pk, user=request.user, label=label)
        except WinnerError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.log_change(request, campaign, f"Confirmed A/B winner {winner}.")
            self.message_user(
                request, f"Variant {winner} is sent to the rest of the audience."
            )
        return redirect("admin:campaigns_campaign_dashboard", pk)
