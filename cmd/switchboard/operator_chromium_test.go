package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/recordings"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// watchBrowser keeps the errors the page writes to the browser's console
// (console.error, uncaught exceptions, failed loads in the browser log),
// and, should the test fail, saves a screenshot of the page in the test's
// artifact directory (kept with go test -artifacts). ctx is the browser's,
// from newChromium. It returns a function that lists the errors so far.
func watchBrowser(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var (
		mu     sync.Mutex
		errors []string
	)
	cctx, cancel := context.WithCancel(ctx)
	messages := chromedp.Console(cctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				errors = append(errors, m.String()+" ("+m.URL+")")
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
			png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
			scancel()
			path := filepath.Join(t.ArtifactDir(), "page.png")
			if err == nil {
				err = os.WriteFile(path, png, 0o644)
			}
			if err != nil {
				t.Logf("no screenshot: %v", err)
			} else {
				t.Logf("screenshot of the page: %s", path)
			}
		}
		cancel()
		<-done
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(errors)
	}
}

// TestChromiumOperatorWorkday is a shift on the operator page in headless
// Chromium: the page loads without an error in its console; with no
// outbound route there is no dial form; a call in a background tab rings
// (the ring tone plays through the page's audio), changes the title and
// shows a desktop notification, and all of it stops when the caller is
// not answered, which recent calls then list as missed, with no "Call
// back"; the caller's next call is answered with Alt+A and described
// (trunk, number dialled, reference and labels an integration attached,
// the earlier call); the operator confirms the caller's consent and
// pauses and resumes the recording from the page, which shows each state
// and which reach the call's timeline and the recording's own marks; then
// they hand the call to a colleague picked from the list, who hears the
// caller.
func TestChromiumOperatorWorkday(t *testing.T) {
	if !runInPrivateNetns(t, "TestChromiumOperatorWorkday") {
		return
	}
	x := mustRecordingFixture(t)
	colleague := x.op // Operators[0], on the Go client: away until the transfer
	ann := mustUser(t, x.m, x.f.Tenant.ID, "ann@acme.test", sb.RoleOperator)
	bctx := newChromium(t)
	consoleErrors := watchBrowser(t, bctx)
	ctx, cancel := context.WithTimeout(bctx, 120*time.Second)
	defer cancel()
	if err := colleague.SetAway(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: "notifications"}, Setting: browser.PermissionSettingGranted, Origin: x.m.HTTPURL()}); err != nil {
		t.Fatal(err)
	}
	run, poll := browserSteps(t, ctx)
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return v
	}

	run("open the page", chromedp.Navigate(x.m.HTTPURL()+"/"), chromedp.WaitVisible(chromedp.CSS("#email")))
	poll("the page asked who the session is", `performance.getEntriesByType("resource").some((e) => e.name.endsWith("/v1/session"))`)
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("the login page loaded with errors in the console: %q", errs)
	}
	run("log in", chromedp.SendKeys(chromedp.CSS("#email"), ann.Email),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#available")))
	poll("PeerConnection connected", `window.switchboard.pc && window.switchboard.pc.connectionState === "connected"`)
	if !mustEval[bool](t, ctx, `document.querySelector("#dial-form").hidden`) {
		t.Error("the dial form is shown to a tenant without an outbound route")
	}
	// Devices: the microphone and the speaker chosen are used, and
	// remembered.
	run("choose the last microphone and speaker", chromedp.Evaluate[chromedp.Void](`(() => {
		for (const id of ["#mic", "#speaker"]) {
			const s = document.querySelector(id);
			s.value = s.options[s.options.length - 1].value;
			s.dispatchEvent(new Event("change"));
		}
	})()`))
	poll("the chosen microphone is sent and remembered", `(() => {
		const id = document.querySelector("#mic").value;
		const track = window.switchboard.pc.getSenders()[0].track;
		return localStorage.getItem("sb.mic") === id && track && track.getSettings().deviceId === id;
	})()`)
	speaker := `(() => {
		const id = localStorage.getItem("sb.speaker");
		return id && id !== "default" && document.querySelector("#speaker").value === id &&
			document.querySelector("#remote-audio").sinkId === id && document.querySelector("#ringer").sinkId === id;
	})()`
	poll("the chosen speaker plays the caller and the ring, and is remembered", speaker)
	run("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#available")))
	poll("after a reload the remembered microphone is used", `(() => {
		const pc = window.switchboard.pc, id = localStorage.getItem("sb.mic");
		const track = pc && pc.connectionState === "connected" && pc.getSenders()[0].track;
		return track && track.getSettings().deviceId === id && document.querySelector("#mic").value === id;
	})()`)
	poll("after a reload the remembered speaker is used", speaker)
	run("go available", chromedp.Click(chromedp.CSS("#available")))
	poll("available", `window.switchboard.state.available === true`)

	// A call in a background tab, not answered.
	run("put the tab in the background", chromedp.Evaluate[chromedp.Void](
		`Object.defineProperty(document, "hidden", { configurable: true, get: () => true })`))
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	missed, err := phone.InviteAsync(ctx, x.m.SIPAddr(), "+15550001111", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer missed.Close()
	poll("the ring tone plays", `(() => { const r = document.querySelector("#ringer"); return !r.paused && r.currentTime > 0.2; })()`)
	poll("the title says who calls", `document.title.startsWith("Incoming call: +15550001111")`)
	poll("a desktop notification is shown", `window.switchboard.notification?.title === "Incoming call" && window.switchboard.notification.body === "+15550001111"`)
	poll("the ring stops when the caller is not answered", `document.querySelector("#ringer").paused && document.title === "switchboard · operator" && window.switchboard.notification === null`)
	if err := missed.Wait(ctx); err == nil {
		t.Fatal("the unanswered call was answered")
	}
	poll("recent calls list the missed call", `[...document.querySelectorAll("#recent li.outcome-missed")].some((li) => li.textContent.includes("+15550001111 · missed"))`)
	if n := mustEval[int](t, ctx, `document.querySelectorAll("#recent button").length`); n != 0 {
		t.Errorf("%d Call back buttons, want none without an outbound route", n)
	}
	run("back in the foreground, available again", chromedp.Evaluate[chromedp.Void](`delete document.hidden`), chromedp.Click(chromedp.CSS("#available")))
	poll("available", `window.switchboard.state.available === true`)

	// The same caller again; an integration labels the call while it rings.
	call, err := phone.InviteAsync(ctx, x.m.SIPAddr(), "+15550001111", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	poll("the call rings", `window.switchboard.call?.state === "ringing" && !document.querySelector("#ringer").paused`)
	id, err := sb.ParseID(mustEval[string](t, ctx, `window.switchboard.call.id`))
	if err != nil {
		t.Fatal(err)
	}
	if code := apiPatch(t, x, "/v1/calls/"+id.String(), `{"external_ref": "CRM-7", "labels": ["vip"]}`); code != http.StatusOK {
		t.Fatalf("PATCH the call: %d", code)
	}
	run("answer with Alt+A", chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierAlt)))
	if err := call.Wait(ctx); err != nil {
		t.Fatalf("the call was not answered: %v", err)
	}
	poll("the ring stops on answer", `document.querySelector("#ringer").paused && document.title === "switchboard · operator"`)
	poll("the status says on a call", `document.querySelector("#status").textContent === "on a call"`)
	poll("the caller is described", `document.querySelector("#caller-ref").textContent === "CRM-7" && !document.querySelector("#caller-info").hidden`)
	if via, to, labels, earlier := text("#caller-via"), text("#caller-to"), text("#caller-labels"), text("#caller-earlier"); !strings.Contains(via, x.f.Trunk.Name) ||
		to != "2000" || labels != "vip" || !strings.Contains(earlier, "no-answer") {
		t.Errorf("caller shown as via %q, dialled %q, labels %q, earlier %q; want trunk %q, 2000, vip and the missed call", via, to, labels, earlier, x.f.Trunk.Name)
	}
	run("mute with Alt+M", chromedp.KeyEvent("m", chromedp.KeyModifiers(chromedp.ModifierAlt)))
	poll("muted", `document.querySelector("#mute").getAttribute("aria-pressed") === "true"`)
	run("unmute with Alt+M", chromedp.KeyEvent("m", chromedp.KeyModifiers(chromedp.ModifierAlt)))
	poll("unmuted", `document.querySelector("#mute").getAttribute("aria-pressed") === "false"`)

	// Consent and pause from the page; the state is shown at each step.
	talk := func() { sendPattern(t, 25, func(p []byte) error { return call.SendRTP(p, false) }) }
	state := func(want string) string {
		return `document.querySelector("#recording-state").textContent === "` + want + `"`
	}
	poll("not recorded at first", state("not recorded")+` && !document.querySelector("#recording").hidden`)
	talk()
	run("the caller consents", chromedp.Click(chromedp.CSS("#consent-give")))
	poll("recording", state("recording")+` && !document.querySelector("#consent-withdraw").hidden`)
	talk()
	run("pause", chromedp.Click(chromedp.CSS("#pause")))
	poll("paused", state("paused")+` && document.querySelector("#pause").textContent === "Resume recording"`)
	talk()
	run("resume", chromedp.Click(chromedp.CSS("#pause")))
	poll("recording again", state("recording"))
	talk()

	// Transfer to the colleague, picked from the list of who is free.
	if err := colleague.SetAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	option := `#transfer-target option[value="op:` + x.f.Operators[0].ID.String() + `"]`
	run("ask who is free", chromedp.Focus(chromedp.CSS("#transfer-target")))
	poll("the colleague is listed, free", `(() => { const o = document.querySelector('`+option+`'); return o && !o.disabled && o.textContent.includes("available"); })()`)
	poll("the free colleague is the one proposed", `document.querySelector("#transfer-target").value === "op:`+x.f.Operators[0].ID.String()+`" && document.querySelector("#transfer-to").hidden`)
	run("transfer", chromedp.Click(chromedp.CSS("#transfer")))
	in := waitIncoming(t, colleague)
	if in.CallID != id {
		t.Fatalf("the colleague was offered %s, want %s", in.CallID, id)
	}
	var heard atomic.Int64
	colleague.SetAudioSink(func(*rtp.Packet) { heard.Add(1) })
	if err := colleague.Accept(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := colleague.WaitConnected(ctx, id); err != nil {
		t.Fatal(err)
	}
	poll("the call has left the page", `window.switchboard.call === null`)
	talk()
	waitCount(t, &heard, 20, "packets of the caller at the colleague")
	time.Sleep(100 * time.Millisecond) // the last frames cross the bridge
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, x.m, x.f.APIKey, id)

	if events := callEvents(t, x.m, x.f.APIKey, id); !hasInOrder(events, sb.EventConsent, sb.EventRecordingStarted,
		sb.EventRecordingPaused, sb.EventRecordingResumed, sb.EventTransferred, sb.EventAnswered, sb.EventRecordingStored) {
		t.Errorf("timeline %v lacks the page's consent, pause, resume and transfer", events)
	}
	var rec sb.Recording
	if code := apiGet(t, x.m, x.f.APIKey, "/v1/calls/"+id.String()+"/recording", &rec); code != http.StatusOK || rec.Status != sb.RecordingComplete ||
		rec.Consent.Mechanism != sb.ConsentOperator || rec.Consent.By != "operator "+ann.ID.String() {
		t.Fatalf("recording: %d %+v, want complete, with the page's consent", code, rec)
	}
	if marks := x.marks(t, id, &rec); len(marks) != 2 || marks[0] != recordings.KindPause || marks[1] != recordings.KindResume {
		t.Errorf("marks in the recording: %v, want the page's pause and resume", marks)
	}
	// 25 frames after consent, none of the 25 paused, 25 after the resume,
	// 25 with the colleague.
	caller := 0
	x.records(t, id, &rec, func(rc recordings.Record) {
		if _, _, ok := media.CheckPatternFrame(rc.Payload); ok && rc.Kind == recordings.KindAudio && rc.Channel == recordings.ChannelCaller {
			caller++
		}
	})
	if n := caller; n < 65 || n > 80 {
		t.Errorf("recorded %d caller frames, want about 75", n)
	}
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("errors in the page's console: %q", errs)
	}
}

// TestChromiumWidgetAndNoRole: the widget loads without an error in its
// console; a visitor whose call nobody could take can try again with the
// same link, and is answered then; an expired link and a spent one say so
// in words, with what to do. On the operator page, a person whose role
// takes no calls is told so, and the page opens no socket.
func TestChromiumWidgetAndNoRole(t *testing.T) {
	if !runInPrivateNetns(t, "TestChromiumWidgetAndNoRole") {
		return
	}
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Shop", "2000", 1)
	support := mustUser(t, m, f.Tenant.ID, "sam@shop.test", sb.RoleSupport)
	bctx := newChromium(t)
	consoleErrors := watchBrowser(t, bctx)
	ctx, cancel := context.WithTimeout(bctx, 120*time.Second)
	defer cancel()
	run, poll := browserSteps(t, ctx)
	status := func(want string) string {
		return `document.querySelector("#status").textContent === ` + jsString(want)
	}

	// Nobody is connected: the first try is refused, and may be tried again.
	token := issueToken(t, m, f.APIKey, `{"number": "2000", "from": "web:visitor-3"}`)
	run("open the widget", chromedp.Navigate(m.HTTPURL()+"/widget#token="+token), chromedp.WaitVisible(chromedp.CSS("#call")))
	poll("the widget is ready", status("Ready to call."))
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("the widget loaded with errors in the console: %q", errs)
	}
	run("call", chromedp.Click(chromedp.CSS("#call")))
	poll("the visitor may try again", `document.querySelector("#status").textContent.endsWith("You can try again.") && document.querySelector("#call").textContent === "Try again" && !document.querySelector("#call").disabled`)
	op := mustOperator(t, m, f.Operators[0])
	run("try again", chromedp.Click(chromedp.CSS("#call")))
	in := waitIncoming(t, op)
	if in.From != "web:visitor-3" {
		t.Errorf("the operator was offered a call from %q", in.From)
	}
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	poll("connected", status("Connected."))
	run("hang up", chromedp.Click(chromedp.CSS("#hangup")))
	waitCallEnded(t, m, f.APIKey, in.CallID)

	// The link is spent now: opened again, it says so and what to do.
	const badLink = "This call link has expired or has already been used. Go back to the site you came from and press its call button again for a new one."
	run("open the spent link", chromedp.Navigate(m.HTTPURL()+"/widget#token="+token+"&again"), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#call")),
		chromedp.Click(chromedp.CSS("#call")))
	poll("the spent link is explained", status(badLink)+` && document.querySelector("#call").disabled`)
	expired := issueToken(t, m, f.APIKey, `{"number": "2000", "from": "web:visitor-4", "ttl_seconds": 1}`)
	time.Sleep(1100 * time.Millisecond) // past its second
	run("open the expired link", chromedp.Navigate(m.HTTPURL()+"/widget#token="+expired), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#call")),
		chromedp.Click(chromedp.CSS("#call")))
	poll("the expired link is explained", status(badLink))
	run("open the widget without a link", chromedp.Navigate(m.HTTPURL()+"/widget"), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#call")))
	noLink := status("This page has no call link. Go back to the site you came from and press its call button.")
	poll("the missing link is explained", noLink)

	// A token comes only from the page that embeds the widget: one posted
	// by another window (here the widget's own, which no page embeds) is
	// ignored; the embedding page's is taken.
	run("a token from a window that does not embed the widget",
		chromedp.Evaluate[chromedp.Void](`window.postMessage({type: "switchboard-token", token: "forged"}, "*"); true`))
	time.Sleep(300 * time.Millisecond)
	poll("the widget ignores it", noLink+` && document.querySelector("#call").disabled`)
	run("embed the widget", chromedp.Evaluate[chromedp.Void](`new Promise((resolve) => {
		const f = document.createElement("iframe");
		f.id = "embedded";
		f.onload = () => resolve(true);
		f.src = "/widget";
		document.body.appendChild(f);
	})`, chromedp.EvalAwaitPromise))
	run("the embedding page gives a token",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("embedded").contentWindow.postMessage({type: "switchboard-token", token: "from-the-site"}, "*"); true`))
	poll("the embedded widget takes it", `(() => { const d = document.getElementById("embedded").contentDocument;
		return d.querySelector("#status").textContent === "Ready to call." && !d.querySelector("#call").disabled; })()`)

	// A support engineer on the operator page.
	run("log in as support", chromedp.Navigate(m.HTTPURL()+"/"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), support.Email),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login")))
	poll("the role is explained", `!document.querySelector("#norole-view").hidden && document.querySelector("#norole-text").textContent.includes("(support) does not take calls")`)
	run("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#norole-view")))
	time.Sleep(500 * time.Millisecond) // a page that connected would have by now
	if mustEval[bool](t, ctx, `window.switchboard.ws !== null || !document.querySelector("#console-view").hidden`) {
		t.Error("the page opened an operator socket for a support engineer")
	}
}

// mustEval evaluates a JavaScript expression in the page.
func mustEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// apiPatch sends a PATCH with the tenant's API key.
func apiPatch(t *testing.T, x *recordingFixture, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPatch, x.m.HTTPURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+x.f.APIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
