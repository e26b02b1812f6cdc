package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// inNetnsEnv marks the re-executed test process that runs inside a private
// network namespace.
const inNetnsEnv = "SWITCHBOARD_TEST_IN_NETNS"

// runInPrivateNetns re-runs the named test inside a new network namespace
// with only loopback up. Chromium gathers no loopback ICE candidates on a
// machine with other interfaces; alone with loopback it does, and nothing
// it sends can leave the machine. It returns true in the child, where the
// test should go on.
func runInPrivateNetns(t *testing.T, name string) bool {
	t.Helper()
	if os.Getenv(inNetnsEnv) == "1" {
		return true
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		requireDependency(t, "unshare (util-linux)")
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"-n", "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`, os.Args[0], "-test.run=^" + name + "$", "-test.v", "-test.count=1"}
	for _, f := range []string{"test.artifacts", "test.outputdir"} {
		// Where a failing test's screenshots go, as asked of the parent.
		if fl := flag.Lookup(f); fl != nil && fl.Value.String() != fl.DefValue {
			args = append(args, "-"+f+"="+fl.Value.String())
		}
	}
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1", "SWITCHBOARD_TEST_DATABASE_URL=")
	out, err := cmd.CombinedOutput()
	t.Logf("inside a private network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("%s in a private network namespace: %v", name, err)
	}
	return false
}

// requireDependency skips a test whose outside dependency is missing, but
// fails it under CI, where a skip would hide the gap.
func requireDependency(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (scripts/deps.sh installs it)", what)
	}
	t.Skipf("%s is missing; run scripts/deps.sh", what)
}

// waitCount waits up to 10 s for n to reach want, and fails the test
// saying what did not arrive.
func waitCount(t *testing.T, n *atomic.Int64, want int64, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); n.Load() < want && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if got := n.Load(); got < want {
		t.Errorf("%d %s, want ≥ %d", got, what, want)
	}
}

// browserSteps returns run, which runs actions in the browser or fails
// the test saying what, and poll, which waits up to 20 s for a JavaScript
// expression to hold.
func browserSteps(t *testing.T, ctx context.Context) (run func(what string, actions ...chromedp.Action[chromedp.Void]), poll func(what, expr string)) {
	run = func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Steps(actions...)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	poll = func(what, expr string) {
		t.Helper()
		run(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
	}
	return run, poll
}

// operatorAvailable has the browser log in to the operator page as email
// and go available once its PeerConnection is connected.
func operatorAvailable(run func(string, ...chromedp.Action[chromedp.Void]), poll func(what, expr string), url, email string) {
	run("log in", chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#available")))
	poll("PeerConnection connected", `window.switchboard.pc && window.switchboard.pc.connectionState === "connected"`)
	run("go available", chromedp.Click(chromedp.CSS("#available")))
	poll("available", `window.switchboard.state.available === true`)
}

// newChromium starts headless Chromium with a fake microphone.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		requireDependency(t, "chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// TestChromiumOperator is the real browser: headless Chromium with a fake
// microphone logs in on the operator page, goes available, answers a SIP
// call, and its WebRTC stats show the caller's audio arriving.
func TestChromiumOperator(t *testing.T) {
	if !runInPrivateNetns(t, "TestChromiumOperator") {
		return
	}
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Browser", "2000", 1)
	ctx := newChromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	run, poll := browserSteps(t, ctx)
	operatorAvailable(run, poll, m.HTTPURL(), f.Operators[0].Email)

	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, err := phone.InviteAsync(ctx, m.SIPAddr(), "+15550002222", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	run("incoming call shown", chromedp.WaitVisible(chromedp.CSS("#answer")))
	caller, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#caller")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(caller, "+15550002222") {
		t.Errorf("page shows caller %q, want +15550002222", caller)
	}
	run("answer", chromedp.Click(chromedp.CSS("#answer")))
	if err := call.Wait(ctx); err != nil {
		t.Fatalf("the SIP call was not answered: %v", err)
	}

	// The caller talks; the browser's inbound audio counters must move,
	// and the browser's fake microphone must reach the caller.
	var fromBrowser atomic.Int64
	call.SetSink(func(pkt []byte) {
		if h, ok := media.ParseHeader(pkt); ok && h.PayloadType == 0 {
			fromBrowser.Add(1) // the browser sends the caller's G.711, as the page was told
		}
	})
	sendPattern(t, 100, func(p []byte) error { return call.SendRTP(p, false) })
	received, err := chromedp.Run(ctx, chromedp.PollFunction[float64](`async () => {
		const stats = await window.switchboard.pc.getStats();
		for (const s of stats.values()) {
			if (s.type === "inbound-rtp" && s.kind === "audio" && s.packetsReceived >= 80) return s.packetsReceived;
		}
		return false;
	}`, chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(200*time.Millisecond)))
	if err != nil {
		t.Fatalf("browser stats show no inbound audio: %v", err)
	}
	if n := fromBrowser.Load(); n < 50 {
		t.Errorf("caller received %d packets of the browser's fake microphone, want ≥ 50", n)
	}

	run("hang up", chromedp.Click(chromedp.CSS("#hangup")))
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("hanging up on the page sent no BYE to the caller")
	}
	poll("recent calls list the call", `document.querySelector("#recent").textContent.includes("+15550002222")`)
	t.Logf("browser received %.0f packets; caller received %d", received, fromBrowser.Load())

	// The next caller speaks Opus over SRTP: the page switches its sender
	// to Opus, and Chromium's own Opus reaches the caller unchanged.
	opusPhone := mustPhone(t, siptest.Options{Transport: "udp", Codec: sb.Codec{Name: "opus", PayloadType: 109, ClockRate: 48000},
		SRTP: "AES_CM_128_HMAC_SHA1_80"})
	call, err = opusPhone.InviteAsync(ctx, m.SIPAddr(), "+15550003333", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	run("the Opus call shown", chromedp.WaitVisible(chromedp.CSS("#answer")))
	run("answer the Opus call", chromedp.Click(chromedp.CSS("#answer")))
	if err := call.Wait(ctx); err != nil {
		t.Fatalf("the Opus call was not answered: %v", err)
	}
	var opusFromBrowser atomic.Int64
	call.SetSink(func(pkt []byte) {
		if h, ok := media.ParseHeader(pkt); ok && h.PayloadType == 109 && h.PayloadEnd-h.PayloadOffset > 20 {
			opusFromBrowser.Add(1) // Chromium's Opus: more than a silent frame's few bytes
		}
	})
	poll("the page sends Opus", `window.switchboard.pc.getSenders()[0].getParameters().encodings[0].codec?.mimeType === "audio/opus"`)
	waitCount(t, &opusFromBrowser, 50, "packets of the browser's Opus at the Opus caller")
	run("hang up the Opus call", chromedp.Click(chromedp.CSS("#hangup")))
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("hanging up the Opus call on the page sent no BYE")
	}
}

// TestChromiumSupportConsole is the diagnostic access flow in a real
// browser: a support engineer of the service's desk opens the tenant's
// call and asks for access with a reason and a ticket; the tenant's admin
// approves; the engineer plays the recording, with its countdown; and the
// admin's audit page shows all three steps.
func TestChromiumSupportConsole(t *testing.T) {
	g := mustGrantFixture(t, sb.SupportPolicy{Access: true, Approval: true, MaxTTLSeconds: 3600})
	supportUser := mustUser(t, g.m, g.deskID, "browser@desk.test", sb.RoleSupport)
	ctx := newChromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	run, poll := browserSteps(t, ctx)
	login := func(email string) {
		t.Helper()
		run("log in as "+email,
			chromedp.Navigate(g.m.HTTPURL()+"/console"),
			chromedp.WaitVisible(chromedp.CSS(`#email`)),
			chromedp.SendKeys(chromedp.CSS(`#email`), email),
			chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
			chromedp.Click(chromedp.CSS(`#login`)),
			chromedp.WaitVisible(chromedp.CSS(`#calls-view`)))
	}
	logout := func() {
		t.Helper()
		run("log out", chromedp.Click(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#login-view`)))
	}
	openCall := func() {
		t.Helper()
		run("search calls", chromedp.Click(chromedp.CSS(`#search-button`)))
		// The list may be drawn again while this looks at it: find and
		// click in one step.
		poll("open the call", `(() => { const b = document.querySelector('.open-call[data-id="`+g.callID.String()+`"]'); if (b) b.click(); return !!b; })()`)
		run("the call opens", chromedp.WaitVisible(chromedp.CSS(`#call-view`)))
	}
	chooseTenant := func() {
		t.Helper()
		run("choose the tenant", chromedp.SendKeys(chromedp.CSS(`#tenant`), g.f.Tenant.ID.String()), chromedp.Click(chromedp.CSS(`#use-tenant`)))
	}
	login(supportUser.Email)
	chooseTenant()
	openCall()
	poll("the recording's consent is shown", `document.querySelector("#call-recording").textContent.includes("given by the PBX header")`)
	// The SIP ladder: every message an arrow; a click shows the message.
	poll("the ladder is drawn", `document.querySelectorAll("#ladder .arrow").length >= 7`)
	poll("open the INVITE", `(() => { const a = document.querySelector("#ladder .arrow"); a.dispatchEvent(new MouseEvent("click")); return true; })()`)
	poll("the INVITE is shown", `document.querySelector("#sip-message").textContent.includes("INVITE sip:2000@")`)
	poll("the quality summary is shown", `document.querySelector("#quality-summary").textContent.includes("packets")`)
	run("request access",
		chromedp.SendKeys(chromedp.CSS(`#reason`), "caller reports one-way audio"),
		chromedp.SendKeys(chromedp.CSS(`#ticket`), "SUP-314"),
		chromedp.Click(chromedp.CSS(`#request-access`)))
	poll("the request waits for approval", `document.querySelector("#call-grants .status-pending") !== null`)
	logout()

	login(g.adminUser.Email)
	run("open the grants", chromedp.Click(chromedp.CSS(`[data-view="grants-view"]`)))
	poll("the pending request is listed", `document.querySelector("#grants .approve") !== null`)
	run("approve", chromedp.Click(chromedp.CSS(`#grants .approve`)))
	poll("approved", `document.querySelector("#grants .status-approved") !== null`)
	logout()

	login(supportUser.Email)
	chooseTenant()
	openCall()
	poll("the grant is usable", `document.querySelector("#call-grants .play") !== null`)
	run("play", chromedp.Click(chromedp.CSS(`#call-grants .play`)))
	poll("the recording plays", `(() => { const p = document.querySelector("#player"); return p.readyState >= 2 && p.duration > 0.3 && !p.error; })()`)
	left, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#call-grants .countdown`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(left, ":") || strings.HasPrefix(left, "0:00") {
		t.Errorf("countdown shows %q", left)
	}
	logout()

	login(g.adminUser.Email)
	run("open the audit log", chromedp.Click(chromedp.CSS(`[data-view="audit-view"]`)))
	for _, action := range []string{"grant.request", "grant.approve", "recording.play"} {
		poll("the audit page shows "+action, `document.querySelector('#audit tr[data-action="`+action+`"]') !== null`)
	}
	run("verify the chain", chromedp.Click(chromedp.CSS(`#verify`)))
	poll("the chain is whole", `document.querySelector("#verify-result").textContent === "The chain is whole."`)
}

// TestChromiumWidget is a website visitor in a real browser: the "call
// us" widget, given a token, calls with its fake microphone over WHIP; the
// operator (a Go client) answers and hears it; the widget says it is
// connected; the visitor hangs up and the record says so.
func TestChromiumWidget(t *testing.T) {
	if !runInPrivateNetns(t, "TestChromiumWidget") {
		return
	}
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Shop", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	token := issueToken(t, m, f.APIKey, `{"number": "2000", "from": "web:visitor-9", "external_ref": "chat-9"}`)
	ctx := newChromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	run, poll := browserSteps(t, ctx)
	run("open the widget and call", chromedp.Steps(
		chromedp.Navigate(m.HTTPURL()+"/widget#token="+token),
		chromedp.WaitVisible(chromedp.CSS("#call")),
		chromedp.Click(chromedp.CSS("#call")),
	))
	in := waitIncoming(t, op)
	if in.From != "web:visitor-9" {
		t.Errorf("operator offered a call from %q", in.From)
	}
	poll("the widget waits for an operator", `document.querySelector("#status").textContent.includes("next free person")`)
	var heard atomic.Int64
	op.SetAudioSink(func(p *rtp.Packet) {
		if p.PayloadType == sb.Opus.PayloadType && len(p.Payload) > 20 {
			heard.Add(1) // Chromium's Opus, unchanged: more than a silent frame's few bytes, the fake microphone's beeps
		}
	})
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	poll("the widget says connected", `document.querySelector("#status").textContent === "Connected."`)
	waitCount(t, &heard, 50, "packets of the visitor's microphone at the operator")
	run("hang up", chromedp.Click(chromedp.CSS("#hangup")))
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.ExternalRef != "chat-9" {
		t.Errorf("record %q by %q, ref %q: want completed by the visitor, chat-9", rec.Status, rec.HangupBy, rec.ExternalRef)
	}
	poll("the widget says the visitor hung up", `document.querySelector("#status").textContent === "You hung up."`)
	t.Logf("operator heard %d packets from the widget", heard.Load())
}

// TestChromiumDialsOut is an operator calling a customer from the page:
// they type a number in the dial form; switchboard calls it through the
// tenant's outbound trunk (a SIPp extension that answers, plays its
// sample and hangs up); the page shows the call connected, the browser
// receives the audio, and the page shows the end.
func TestChromiumDialsOut(t *testing.T) {
	if !runInPrivateNetns(t, "TestChromiumDialsOut") {
		return
	}
	m := mustStartService(t, map[string]string{"keyring": testKeyring})
	f := mustProvision(t, m, "Dialer", "2000", 1)
	ctx := newChromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	carrier, done := carrierSIPp(ctx, t, "uas_answer_bye.xml")
	outboundTrunk(t, m, f, "carrier", carrier, 1)
	run, poll := browserSteps(t, ctx)
	operatorAvailable(run, poll, m.HTTPURL(), f.Operators[0].Email)
	run("dial", chromedp.SendKeys(chromedp.CSS("#dial-number"), "+1 555 000 4444"), chromedp.Click(chromedp.CSS("#dial")))
	poll("connected", `document.querySelector("#call-state").textContent === "connected"`)
	received, err := chromedp.Run(ctx, chromedp.PollFunction[float64](`async () => {
		const stats = await window.switchboard.pc.getStats();
		for (const s of stats.values()) {
			if (s.type === "inbound-rtp" && s.kind === "audio" && s.packetsReceived >= 50) return s.packetsReceived;
		}
		return false;
	}`, chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(200*time.Millisecond)))
	if err != nil {
		t.Fatalf("the browser received none of the called party's audio: %v", err)
	}
	poll("the far end hung up", `document.querySelector("#call-state").textContent.startsWith("ended")`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var list struct {
		Calls []sb.Call `json:"calls"`
	}
	apiGet(t, m, f.APIKey, "/v1/calls", &list)
	if len(list.Calls) != 1 || list.Calls[0].Direction != sb.Outbound || list.Calls[0].To != "+15550004444" {
		t.Fatalf("calls: %+v", list.Calls)
	}
	if rec := waitCallEnded(t, m, f.APIKey, list.Calls[0].ID); rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller {
		t.Errorf("record %q by %q, want completed by the called party", rec.Status, rec.HangupBy)
	}
	t.Logf("browser received %.0f packets", received)
}

// TestChromiumOperatorReconnects: the operator's page loses its socket
// mid-call (closed from the page, as a network change would); the page
// reconnects by itself, shows the call again, and the caller's audio
// reaches the new PeerConnection.
func TestChromiumOperatorReconnects(t *testing.T) {
	if !runInPrivateNetns(t, "TestChromiumOperatorReconnects") {
		return
	}
	m := mustStartService(t, map[string]string{"reconnect-grace": "15s"})
	f := mustProvision(t, m, "Browser", "2000", 1)
	ctx := newChromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	run, poll := browserSteps(t, ctx)
	operatorAvailable(run, poll, m.HTTPURL(), f.Operators[0].Email)
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, err := phone.InviteAsync(ctx, m.SIPAddr(), "+15550002222", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	run("answer", chromedp.WaitVisible(chromedp.CSS("#answer")), chromedp.Click(chromedp.CSS("#answer")))
	if err := call.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	poll("connected", `document.querySelector("#call-state").textContent === "connected"`)

	run("lose the connection", chromedp.Evaluate[chromedp.Void](`window.switchboard.firstPC = window.switchboard.pc; window.switchboard.ws.close(); true`))
	poll("the page reconnects with a new PeerConnection", `window.switchboard.pc && window.switchboard.pc !== window.switchboard.firstPC && window.switchboard.pc.connectionState === "connected"`)
	poll("the call is shown again", `document.querySelector("#call-state").textContent === "connected" && document.querySelector("#caller").textContent.includes("2222")`)
	talking := make(chan struct{})
	go func() {
		defer close(talking)
		for range 150 {
			call.SendRTP(bytes.Repeat([]byte{0x5a}, 160), false)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	received, err := chromedp.Run(ctx, chromedp.PollFunction[float64](`async () => {
		const stats = await window.switchboard.pc.getStats();
		for (const s of stats.values()) {
			if (s.type === "inbound-rtp" && s.kind === "audio" && s.packetsReceived >= 50) return s.packetsReceived;
		}
		return false;
	}`, chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(200*time.Millisecond)))
	if err != nil {
		t.Fatalf("the new PeerConnection received none of the caller's audio: %v", err)
	}
	select {
	case <-call.Ended():
		t.Fatal("the caller was hung up on")
	default:
	}
	<-talking
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	poll("the page shows the end", `document.querySelector("#call-state").textContent.startsWith("ended")`)
	t.Logf("after reconnecting the browser received %.0f packets", received)
}

// TestChromiumPlaysOpusRecording is a widget call in Opus from headless
// Chromium (its fake microphone's beeps, encoded by its own Opus
// encoder), recorded with the operator's consent. The recording, played
// through an admin's grant, is Ogg Opus that Chromium's own decoder
// opens: two channels, the caller's beeps on the left, the silent
// operator on the right.
func TestChromiumPlaysOpusRecording(t *testing.T) {
	if !runInPrivateNetns(t, "TestChromiumPlaysOpusRecording") {
		return
	}
	g := mustGrantFixture(t, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600})
	token := issueToken(t, g.m, g.f.APIKey, `{"number": "2000", "from": "web:visitor-7"}`)
	ctx := newChromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	run, poll := browserSteps(t, ctx)
	run("open the widget and call", chromedp.Steps(
		chromedp.Navigate(g.m.HTTPURL()+"/widget#token="+token),
		chromedp.WaitVisible(chromedp.CSS("#call")),
		chromedp.Click(chromedp.CSS("#call")),
	))
	in := waitIncoming(t, g.op)
	if err := g.op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := g.op.WaitConnected(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := g.op.Consent(ctx, in.CallID, true); err != nil {
		t.Fatal(err)
	}
	poll("the widget says connected", `document.querySelector("#status").textContent === "Connected."`)
	time.Sleep(4 * time.Second) // beeps, recorded
	run("hang up", chromedp.Click(chromedp.CSS("#hangup")))
	if rec := waitCallEnded(t, g.m, g.f.APIKey, in.CallID); rec.Codec != "opus" {
		t.Fatalf("the widget's call was carried in %q, want opus", rec.Codec)
	}
	gr := g.adminGrant(t, in.CallID)
	code, file := g.admin.do(http.MethodGet, "/v1/grants/"+gr.ID.String()+"/audio", "", nil)
	if code != http.StatusOK {
		t.Fatalf("audio: %d", code)
	}
	type decoded struct {
		Channels    int     `json:"channels"`
		Duration    float64 `json:"duration"`
		Left, Right float64
		Error       string `json:"error"`
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[decoded](`(async () => {
		try {
			const bin = atob("`+base64.StdEncoding.EncodeToString([]byte(file))+`");
			const buf = new Uint8Array(bin.length);
			for (let i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
			const audio = await new OfflineAudioContext(2, 48000, 48000).decodeAudioData(buf.buffer);
			const rms = (ch) => { const d = audio.getChannelData(ch); let s = 0; for (const x of d) s += x * x; return Math.sqrt(s / d.length); };
			return { channels: audio.numberOfChannels, duration: audio.duration, left: rms(0), right: rms(1) };
		} catch (e) { return { error: String(e) }; }
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Chromium decoded %+v from %d bytes", got, len(file))
	if got.Error != "" || got.Channels != 2 || got.Duration < 3 || got.Duration > 15 || got.Left < 0.005 || got.Right > got.Left/10 {
		t.Errorf("Chromium decoded %+v: want two channels of a few seconds, the caller's beeps left, silence right", got)
	}
}
