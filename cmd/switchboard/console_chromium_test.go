package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// screenshotOnFailure saves the page as a PNG in the test's artifact
// folder (go test -artifacts keeps it under -outputdir) if the test has
// failed by its end. ctx must be newChromium's, which outlives the test's
// own timeouts.
func screenshotOnFailure(t *testing.T, ctx context.Context) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		shot, err := chromedp.Run(sctx, chromedp.FullScreenshot(90))
		if err != nil {
			t.Logf("no screenshot: %v", err)
			return
		}
		path := filepath.Join(t.ArtifactDir(), "screenshot.png")
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Logf("no screenshot: %v", err)
			return
		}
		t.Logf("screenshot of the page: %s", path)
	})
}

// consoleProblems gathers what the page logs as an error: console.error,
// uncaught exceptions, and the browser's own errors (a failed request, a
// 401 or 404 among them).
func consoleProblems(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var mu sync.Mutex
	var problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		var p string
		switch e := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			if e.Type == cdpruntime.ConsoleAPICalledTypeError {
				p = "console.error"
				for _, a := range e.Args {
					p += " " + string(a.Value) + a.Description
				}
			}
		case *cdpruntime.EventExceptionThrown:
			p = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				p += " " + e.ExceptionDetails.Exception.Description
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				p = fmt.Sprintf("browser: %s %s", e.Entry.Text, e.Entry.URL)
			}
		}
		if p != "" {
			mu.Lock()
			problems = append(problems, p)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// setValue sets a form field's value as a person choosing it would leave
// it.
func setValue(selector, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = %q`, selector, value))
}

// uuidsVisible is a page expression: the IDs visible in the element's
// text ("" for none). A closed <details> is not visible, so the raw
// events behind them do not count.
func uuidsVisible(selector string) string {
	return `(document.querySelector(` + "`" + selector + "`" + `).innerText.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi) || []).join(", ")`
}

// TestChromiumConsoleReads is the console as a tenant's admin reads it all
// day, in one browser: the first load logs no error (no 401 before the
// login, an icon); the calls list names operators and trunks and shows no
// ID, pages past the first 100, and filters by reference, label and an
// operator picked from a list (the export takes the same filters); a
// call's timeline reads as sentences with the raw events one click away;
// its charts' legends carry each series' colour; grants and the audit log
// name people; the live view shows a call in progress and an operator's
// state. The page logs no error on the way.
func TestChromiumConsoleReads(t *testing.T) {
	m := mustStartService(t, nil)
	acme := mustProvision(t, m, "Acme", "2000", 1)
	other := mustProvision(t, m, "Other", "2001", 0)
	bob := acme.Operators[0] // named "Operator"
	ann := mustNamedUser(t, m, acme.Tenant.ID, "ann@acme.test", "Ann Lee", sb.RoleOperator)
	admin := mustNamedUser(t, m, acme.Tenant.ID, "ada@acme.test", "Ada Admin", sb.RoleAdmin)
	support := mustNamedUser(t, m, acme.Tenant.ID, "sam@acme.test", "Sam Support", sb.RoleSupport)
	ctx := context.Background()

	// 130 ended calls, more than a page of the list.
	seedCalls(t, m, acme.Tenant.ID, 130, func(i int, c *sb.Call) {
		c.TrunkID, c.OperatorID = &acme.Trunk.ID, &bob.ID
		if i%2 == 0 {
			c.OperatorID = &ann.ID
		}
		if i == 7 {
			c.ExternalRef = "CRM-42"
		}
		if i%50 == 0 {
			c.Labels = []string{"vip"}
		}
	})
	seedCalls(t, m, other.Tenant.ID, 2, func(i int, c *sb.Call) { c.From = fmt.Sprintf("+1999000%04d", i) })
	// The call whose story the timeline tells, with a recording, quality
	// samples and a grant; then one in progress.
	story := seedCalls(t, m, acme.Tenant.ID, 1, func(_ int, c *sb.Call) {
		c.TrunkID, c.OperatorID, c.From, c.Codec = &acme.Trunk.ID, &ann.ID, "+4930555000", "PCMU"
	})[0]
	live := seedCalls(t, m, acme.Tenant.ID, 1, func(_ int, c *sb.Call) {
		c.TrunkID, c.OperatorID, c.Status, c.EndedAt, c.HangupBy, c.From = &acme.Trunk.ID, &bob.ID, sb.CallAnswered, nil, "", "+4930777000"
		answered := time.Now().Add(-5 * time.Second)
		c.AnsweredAt = &answered
	})[0]
	gone := sb.NewID() // a person deleted since: the page must not show their ID
	at := story.CreatedAt
	events := []struct {
		typ    sb.EventType
		detail map[string]any
		want   string
	}{
		{sb.EventReceived, map[string]any{"source": "udp:192.0.2.7:5060"}, "Call received from udp:192.0.2.7:5060"},
		{sb.EventOffered, map[string]any{"operator_id": ann.ID}, "Ringing Ann Lee"},
		{sb.EventRinging, nil, "The caller hears ringing (180)"},
		{sb.EventAnswered, map[string]any{"operator_id": ann.ID, "codec": "PCMU"}, "Answered by Ann Lee, PCMU"},
		{sb.EventConsent, map[string]any{"given": true, "mechanism": sb.ConsentSIPHeader, "by": "trunk Acme pbx"}, "Consent given by the PBX header (trunk Acme pbx)"},
		{sb.EventRecordingStarted, map[string]any{"mechanism": sb.ConsentSIPHeader}, "Recording started, consent by the PBX header"},
		{sb.EventRecordingPaused, map[string]any{"by": "user " + admin.ID.String()}, "Recording paused by Ada Admin"},
		{sb.EventDTMF, map[string]any{"digit": "*", "from": "caller", "masked": true}, "The caller pressed a key (hidden: the recording was paused)"},
		{sb.EventRecordingResumed, map[string]any{"by": "user " + gone.String()}, "Recording resumed by a deleted person"},
		{sb.EventHungUp, map[string]any{"by": sb.PartyCaller}, "The caller hung up"},
		{sb.EventEnded, map[string]any{"status": sb.CallCompleted, "hangup_by": sb.PartyCaller}, "Call ended: completed, hung up by the caller"},
	}
	calls := metadata.NewCallStore(m.DB)
	var want []string
	for i, e := range events {
		if err := calls.AddCallEvents(ctx, &sb.CallEvent{CallID: story.ID, TenantID: acme.Tenant.ID, At: at.Add(time.Duration(i) * 100 * time.Millisecond),
			Type: e.typ, Detail: e.detail}); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.want)
	}
	var samples []sb.QualitySample
	for i := range 4 {
		for _, leg := range []string{"trunk", "browser"} {
			samples = append(samples, sb.QualitySample{At: at.Add(time.Duration(i) * 5 * time.Second), Leg: leg, Source: "switchboard",
				Packets: uint64(250 * (i + 1)), Lost: int64(i * 3), JitterMS: float64(2 + i)})
		}
	}
	if err := calls.AddCallTrace(ctx, &sb.CallTrace{TenantID: acme.Tenant.ID, CallID: story.ID, Quality: samples}); err != nil {
		t.Fatal(err)
	}
	rec := &sb.Recording{ID: sb.NewID(), TenantID: acme.Tenant.ID, CallID: story.ID, Status: sb.RecordingComplete, Codec: "PCMU",
		ClockRate: 8000, StartedAt: at, WrappedKey: []byte("sealed"), ObjectKey: "seeded",
		Consent: sb.Consent{Given: true, Mechanism: sb.ConsentSIPHeader, At: at, By: "trunk Acme pbx"}}
	if err := metadata.NewRecordingStore(m.DB).CreateRecording(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if code, raw := mustLogin(t, m, support).do("POST", "/v1/calls/"+story.ID.String()+"/grants", `{"reason":"one-way audio","ticket":"SUP-1"}`, nil); code != 201 {
		t.Fatalf("grant: %d %s", code, raw)
	}
	mustOperator(t, m, ann) // available, on this instance

	base := newChromium(t)
	screenshotOnFailure(t, base)
	problems := consoleProblems(t, base)
	bctx, cancel := context.WithTimeout(base, 120*time.Second)
	defer cancel()
	run, poll := browserSteps(t, bctx)
	text := func(what, expr string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	noIDs := func(where, selector string) {
		t.Helper()
		if ids := text("IDs in "+where, uuidsVisible(selector)); ids != "" {
			t.Errorf("%s shows IDs: %s", where, ids)
		}
	}

	run("open the console", chromedp.Navigate(m.HTTPURL()+"/console"), chromedp.WaitVisible(chromedp.CSS(`#email`)))
	if p := problems(); len(p) > 0 {
		t.Errorf("the first load logged errors: %q", p)
	}
	run("log in", chromedp.SendKeys(chromedp.CSS(`#email`), admin.Email), chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`#login`)), chromedp.WaitVisible(chromedp.CSS(`#calls-view`)))

	// The list: names, no IDs, another tenant's calls nowhere; then
	// past the first 100.
	poll("the first page", `document.querySelectorAll("#calls tr").length === 100 && !document.querySelector("#more-calls").hidden`)
	if got := text("operators", `[...new Set([...document.querySelectorAll("#calls td.operator")].map((td) => td.textContent))].sort().join("|")`); got != "Ann Lee|Operator" {
		t.Errorf("the list's operators: %q, want Ann Lee and Operator by name", got)
	}
	if got := text("trunks", `[...new Set([...document.querySelectorAll("#calls td.trunk")].map((td) => td.textContent))].join("|")`); got != "Acme pbx" {
		t.Errorf("the list's trunks: %q", got)
	}
	noIDs("the calls list", "#calls-view")
	run("show more", chromedp.Click(chromedp.CSS(`#more-calls`)))
	poll("past the first 100", `document.querySelectorAll("#calls tr").length === 132 && document.querySelector("#more-calls").hidden`)
	if got := text("other tenant", `String(document.querySelector("#calls").innerText.includes("+1999000"))`); got != "false" {
		t.Error("another tenant's calls are listed")
	}

	// Filters: reference, label, an operator from the list.
	search := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		run(what, append(append([]chromedp.Action[chromedp.Void]{
			setValue(`#external-ref`, ""), setValue(`#label`, ""),
			setValue(`#operator`, "")}, actions...), chromedp.Click(chromedp.CSS(`#search-button`)))...)
	}
	search("search by reference", setValue(`#external-ref`, "CRM-42"))
	poll("one call has the reference", `document.querySelectorAll("#calls tr").length === 1 && document.querySelector("#calls-count").textContent === "1 call"`)
	search("search by label", setValue(`#label`, "vip"))
	poll("three calls have the label", `document.querySelectorAll("#calls tr").length === 3`)
	run("export the search", chromedp.Evaluate[chromedp.Void](`HTMLAnchorElement.prototype.click = function () { window.exported = this.href }`),
		chromedp.Click(chromedp.CSS(`#export`)))
	if href := text("the export's address", `window.exported || ""`); !strings.Contains(href, "/v1/calls?") || !strings.Contains(href, "label=vip") || !strings.Contains(href, "format=csv") {
		t.Errorf("the export asks %q, want the search's filters as CSV", href)
	}
	if got := text("operator choices", `[...document.querySelectorAll("#operator option")].map((o) => o.textContent).join("|")`); !strings.Contains(got, "Ann Lee") {
		t.Errorf("the operator filter offers %q", got)
	}
	noIDs("the operator filter", "#operator")
	search("search by operator", setValue(`#operator`, ann.ID.String()))
	poll("Ann's calls", `document.querySelectorAll("#calls tr").length === 66 && [...document.querySelectorAll("#calls td.operator")].every((td) => td.textContent === "Ann Lee")`)

	// The story's timeline, charts, recording and grant.
	search("find the story", setValue(`#number`, story.From))
	poll("the story is listed", `document.querySelectorAll("#calls tr").length === 1`)
	run("open it", chromedp.Click(chromedp.CSS(`#calls .open-call`)), chromedp.WaitVisible(chromedp.CSS(`#call-view`)))
	poll("the timeline", fmt.Sprintf(`document.querySelectorAll("#call-events li").length === %d`, len(events)))
	poll("the grant", `document.querySelectorAll("#call-grants tr").length === 1`)
	poll("the charts", `document.querySelectorAll("#charts polyline.series").length >= 4`)
	got := text("sentences", `[...document.querySelectorAll("#call-events .sentence")].map((s) => s.textContent).join("\n")`)
	if got != strings.Join(want, "\n") {
		t.Errorf("the timeline reads:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	noIDs("the call", "#call-view")
	if got := text("the record", `document.querySelector("#call-record").innerText`); !strings.Contains(got, "Ann Lee") || !strings.Contains(got, "Acme pbx") {
		t.Errorf("the call's record: %q, want its operator and trunk by name", got)
	}
	if got := text("the grant", `document.querySelector("#call-grants").innerText`); !strings.Contains(got, "Sam Support") {
		t.Errorf("the call's grant: %q, want its requester by name", got)
	}
	run("open a raw event", chromedp.Click(chromedp.CSS(`#call-events li[data-type="offered"] summary`)))
	if raw := text("the raw event", `document.querySelector('#call-events li[data-type="offered"] pre').innerText`); !strings.Contains(raw, `"operator_id": "`+ann.ID.String()+`"`) {
		t.Errorf("the raw event: %q", raw)
	}
	if got := text("legends", `(() => {
		const out = [];
		for (const c of document.querySelectorAll("#charts svg.chart")) {
			const colors = new Set();
			for (const p of c.querySelectorAll("polyline.series")) {
				const sw = c.querySelector('rect.swatch[data-series="' + p.dataset.series + '"]');
				const label = sw && sw.nextElementSibling;
				colors.add(p.getAttribute("stroke"));
				if (!sw || sw.getAttribute("fill") !== p.getAttribute("stroke")) out.push(p.dataset.series + ": no swatch of its colour");
				else if (getComputedStyle(label).fill !== getComputedStyle(sw).fill) out.push(p.dataset.series + ": legend text " + getComputedStyle(label).fill);
			}
			if (colors.size !== c.querySelectorAll("polyline.series").length) out.push("two series share a colour");
		}
		return out.join("; ");
	})()`); got != "" {
		t.Errorf("chart legends: %s", got)
	}

	// Grants and the audit log.
	run("open the grants", chromedp.Click(chromedp.CSS(`[data-view="grants-view"]`)))
	poll("the grant is listed", `document.querySelectorAll("#grants tr").length === 1`)
	if got := text("grants", `document.querySelector("#grants").innerText`); !strings.Contains(got, "Sam Support (support)") {
		t.Errorf("the grants: %q, want the requester by name", got)
	}
	noIDs("the grants", "#grants-view")
	run("open the audit log", chromedp.Click(chromedp.CSS(`[data-view="audit-view"]`)))
	poll("the grant's request is audited", `!!document.querySelector('#audit tr[data-action="grant.request"]')`)
	if got := text("audit", `document.querySelector('#audit tr[data-action="grant.request"] .who').innerText`); got != "Sam Support (support)" {
		t.Errorf("the grant's request is audited as by %q", got)
	}
	noIDs("the audit log", "#audit-view")

	// The live view.
	run("open the live view", chromedp.Click(chromedp.CSS(`[data-view="live-view"]`)))
	poll("Ann is available", `document.querySelector('#live-operators tr[data-operator="Ann Lee"] .state')?.textContent === "available"`)
	poll("the call in progress", `!!document.querySelector('#live-calls tr[data-call="`+live.ID.String()+`"]')`)
	if got := text("live call", `document.querySelector('#live-calls tr[data-call="`+live.ID.String()+`"]').innerText`); !strings.Contains(got, "Operator") || !strings.Contains(got, "answered") {
		t.Errorf("the call in progress reads %q", got)
	}
	noIDs("the live view", "#live-view")

	if p := problems(); len(p) > 0 {
		t.Errorf("the page logged errors: %q", p)
	}
}
