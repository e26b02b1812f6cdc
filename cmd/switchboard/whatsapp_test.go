package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// graphEmulator plays Meta's side of the WhatsApp Business Calling API in
// Graph API mode: the calls and messages endpoints of one business phone
// number, checking every request as strictly as the documentation
// describes it (URL, method, Bearer token, JSON shape), and the webhooks,
// signed with the app secret, that it posts to switchboard.
type graphEmulator struct {
	t           *testing.T
	srv         *httptest.Server
	phoneID     string
	token       string
	appSecret   string
	webhookURL  string
	noPermision map[string]bool // users who gave no permission to call (138006)

	mu      sync.Mutex
	actions []graphAction
	seq     int
	got     chan graphAction
	refused map[string]bool // call actions answered with an error (recorded all the same)
}

// graphAction is one request switchboard made of the Calls endpoint, or a
// permission request.
type graphAction struct {
	Action string
	CallID string
	To     string
	SDP    string
	Text   string // a permission request's
}

const (
	waPhoneID   = "106540352242922"
	waBusiness  = "+15550001000"
	waUser      = "+4915112345678"
	waStranger  = "+4915199999999"
	waAppSecret = "app-secret-of-the-meta-app"
	waToken     = "EAAG-access-token-for-tests"
)

func newGraphEmulator(t *testing.T) *graphEmulator {
	g := &graphEmulator{t: t, phoneID: waPhoneID, token: waToken, appSecret: waAppSecret,
		noPermision: map[string]bool{strings.TrimPrefix(waStranger, "+"): true}, got: make(chan graphAction, 64)}
	mux := http.NewServeMux()
	mux.HandleFunc("/v21.0/", g.serve)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *graphEmulator) graphError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "OAuthException", "code": code,
		"fbtrace_id": "AbCdEf"}})
}

var sdpStart = regexp.MustCompile(`^v=0\r\no=`)

func (g *graphEmulator) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		g.t.Errorf("graph api: %s %s", r.Method, r.URL.Path)
		g.graphError(w, http.StatusBadRequest, 100, "unsupported method")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		g.t.Errorf("graph api: %s without the access token as Bearer", r.URL.Path)
		g.graphError(w, http.StatusUnauthorized, 190, "Invalid OAuth access token")
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		g.t.Errorf("graph api: content type %q", r.Header.Get("Content-Type"))
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	switch r.URL.Path {
	case "/v21.0/" + g.phoneID + "/calls":
		var in struct {
			MessagingProduct string `json:"messaging_product"`
			CallID           string `json:"call_id"`
			To               string `json:"to"`
			Action           string `json:"action"`
			Session          *struct {
				SDPType string `json:"sdp_type"`
				SDP     string `json:"sdp"`
			} `json:"session"`
		}
		if err := dec.Decode(&in); err != nil || in.MessagingProduct != "whatsapp" {
			g.t.Errorf("graph api: calls body: %v %+v", err, in)
			g.graphError(w, http.StatusBadRequest, 100, "Invalid parameter")
			return
		}
		a := graphAction{Action: in.Action, CallID: in.CallID, To: in.To}
		if in.Session != nil {
			a.SDP = in.Session.SDP
		}
		withSDP := in.Session != nil && sdpStart.MatchString(in.Session.SDP)
		switch in.Action {
		case "pre_accept", "accept":
			if in.CallID == "" || in.To != "" || !withSDP || in.Session.SDPType != "answer" {
				g.t.Errorf("graph api: %s: %+v", in.Action, in)
				g.graphError(w, http.StatusBadRequest, 100, "Invalid parameter")
				return
			}
		case "reject", "terminate":
			if in.CallID == "" || in.To != "" || in.Session != nil {
				g.t.Errorf("graph api: %s: %+v", in.Action, in)
				g.graphError(w, http.StatusBadRequest, 100, "Invalid parameter")
				return
			}
		case "connect":
			if in.CallID != "" || !regexp.MustCompile(`^[0-9]{6,15}$`).MatchString(in.To) || !withSDP || in.Session.SDPType != "offer" {
				g.t.Errorf("graph api: connect: %+v", in)
				g.graphError(w, http.StatusBadRequest, 100, "Invalid parameter")
				return
			}
			if g.noPermision[in.To] {
				g.record(a)
				g.graphError(w, http.StatusBadRequest, 138006, "No approved call permission from the recipient")
				return
			}
			g.mu.Lock()
			g.seq++
			a.CallID = fmt.Sprintf("wacid.HBgLMTIxODU1NTI4MjgVAgARGCAy%04d", g.seq)
			g.mu.Unlock()
			g.record(a)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"messaging_product": "whatsapp", "calls": []map[string]string{{"id": a.CallID}}})
			return
		default:
			g.t.Errorf("graph api: action %q", in.Action)
			g.graphError(w, http.StatusBadRequest, 100, "Invalid parameter")
			return
		}
		g.record(a)
		if g.refuses(in.Action) {
			g.graphError(w, http.StatusBadRequest, 138000, "Call action failed")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"success": true}`)
	case "/v21.0/" + g.phoneID + "/messages":
		var in struct {
			MessagingProduct string `json:"messaging_product"`
			RecipientType    string `json:"recipient_type"`
			To               string `json:"to"`
			Type             string `json:"type"`
			Interactive      struct {
				Type   string `json:"type"`
				Action struct {
					Name string `json:"name"`
				} `json:"action"`
				Body struct {
					Text string `json:"text"`
				} `json:"body"`
			} `json:"interactive"`
		}
		if err := dec.Decode(&in); err != nil || in.MessagingProduct != "whatsapp" || in.RecipientType != "individual" || in.Type != "interactive" ||
			in.Interactive.Type != "call_permission_request" || in.Interactive.Action.Name != "call_permission_request" || in.Interactive.Body.Text == "" {
			g.t.Errorf("graph api: messages body: %v %+v", err, in)
			g.graphError(w, http.StatusBadRequest, 100, "Invalid parameter")
			return
		}
		g.record(graphAction{Action: "call_permission_request", To: in.To, Text: in.Interactive.Body.Text})
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"messaging_product": "whatsapp", "contacts": [{"input": "`+in.To+`", "wa_id": "`+in.To+`"}], "messages": [{"id": "wamid.HBgL"}]}`)
	default:
		g.t.Errorf("graph api: no such endpoint %s", r.URL.Path)
		g.graphError(w, http.StatusNotFound, 803, "Unknown path")
	}
}

// refuse makes the calls endpoint answer action with an error from now on.
func (g *graphEmulator) refuse(action string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refused == nil {
		g.refused = map[string]bool{}
	}
	g.refused[action] = true
}

func (g *graphEmulator) refuses(action string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused[action]
}

func (g *graphEmulator) record(a graphAction) {
	g.mu.Lock()
	g.actions = append(g.actions, a)
	g.mu.Unlock()
	g.got <- a
}

// next waits for switchboard's next request.
func (g *graphEmulator) next(t *testing.T) graphAction {
	t.Helper()
	select {
	case a := <-g.got:
		return a
	case <-time.After(15 * time.Second):
		t.Fatal("switchboard made no further Graph API request")
		return graphAction{}
	}
}

// expect waits for the next request and checks its action and call.
func (g *graphEmulator) expect(t *testing.T, action, callID string) graphAction {
	t.Helper()
	a := g.next(t)
	if a.Action != action || callID != "" && a.CallID != callID {
		t.Fatalf("graph api: got %s for %q, want %s for %q", a.Action, a.CallID, action, callID)
	}
	return a
}

// quiet checks that switchboard makes no request for a while.
func (g *graphEmulator) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case a := <-g.got:
		t.Errorf("an unexpected Graph API request: %+v", a)
	case <-time.After(d):
	}
}

// signature is body's X-Hub-Signature-256 with the app secret (or with
// secret, when given).
func (g *graphEmulator) signature(body []byte, secret string) string {
	if secret == "" {
		secret = g.appSecret
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// post signs body with the app secret (or with secret, when given) and
// posts it to the connection's webhook; it returns the status.
func (g *graphEmulator) post(t *testing.T, body []byte, secret string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.webhookURL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", g.signature(body, secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// webhook is a calls-field event as Meta sends it.
func (g *graphEmulator) webhook(calls []map[string]any, statuses []map[string]any) []byte {
	value := map[string]any{"messaging_product": "whatsapp",
		"metadata": map[string]string{"phone_number_id": g.phoneID, "display_phone_number": strings.TrimPrefix(waBusiness, "+")}}
	if calls != nil {
		value["calls"] = calls
	}
	if statuses != nil {
		value["statuses"] = statuses
	}
	b, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{"id": "366634483210360",
		"changes": []any{map[string]any{"field": "calls", "value": value}}}}})
	return b
}

func now() string { return strconv.FormatInt(time.Now().Unix(), 10) }

// connect is a user's call: their SDP offer.
func (g *graphEmulator) connect(callID, from, offer string) []byte {
	return g.webhook([]map[string]any{{"id": callID, "from": strings.TrimPrefix(from, "+"), "to": strings.TrimPrefix(waBusiness, "+"),
		"event": "connect", "timestamp": now(), "direction": "USER_INITIATED", "session": map[string]string{"sdp_type": "offer", "sdp": offer}}}, nil)
}

// answer is the user's answer to a call the business placed.
func (g *graphEmulator) answer(callID, to, answer string) []byte {
	return g.webhook([]map[string]any{{"id": callID, "from": strings.TrimPrefix(waBusiness, "+"), "to": strings.TrimPrefix(to, "+"),
		"event": "connect", "timestamp": now(), "direction": "BUSINESS_INITIATED", "session": map[string]string{"sdp_type": "answer", "sdp": answer}}}, nil)
}

// terminate is the call ending on WhatsApp's side.
func (g *graphEmulator) terminate(callID, direction string) []byte {
	return g.webhook([]map[string]any{{"id": callID, "from": strings.TrimPrefix(waUser, "+"), "to": strings.TrimPrefix(waBusiness, "+"),
		"event": "terminate", "timestamp": now(), "direction": direction, "status": "COMPLETED", "duration": 3}}, nil)
}

// status is how a call the business placed stands.
func (g *graphEmulator) status(callID, status string) []byte {
	return g.webhook(nil, []map[string]any{{"id": callID, "type": "call", "status": status, "timestamp": now(),
		"recipient_id": strings.TrimPrefix(waUser, "+")}})
}

// waFixture is a service with a tenant whose WhatsApp number is connected
// to the emulator through the admin API.
type waFixture struct {
	m      *Main
	f      *tenantFixture
	g      *graphEmulator
	admin  string // an admin's API key
	conn   sb.WhatsAppConnection
	verify string
}

func mustWhatsApp(t *testing.T, settings map[string]string) *waFixture {
	t.Helper()
	values := map[string]string{"keyring": testKeyring}
	for k, v := range settings {
		values[k] = v
	}
	m := mustStartService(t, values)
	return mustWhatsAppOn(t, m, mustProvision(t, m, "Acme", "2000", 1))
}

func mustWhatsAppOn(t *testing.T, m *Main, f *tenantFixture) *waFixture {
	t.Helper()
	x := &waFixture{m: m, f: f, g: newGraphEmulator(t)}
	var err error
	if _, x.admin, err = metadata.NewAPIKeyService(m.DB).CreateAPIKey(context.Background(), f.Tenant.ID, sb.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	body := map[string]string{"name": "Support line", "phone_number_id": waPhoneID, "number": waBusiness, "graph_url": x.g.srv.URL + "/v21.0",
		"app_secret": waAppSecret, "access_token": waToken}
	var out struct {
		Connection  sb.WhatsAppConnection `json:"connection"`
		VerifyToken string                `json:"verify_token"`
		WebhookPath string                `json:"webhook_path"`
	}
	if code, raw := apiCall(t, m, x.admin, http.MethodPost, "/v1/whatsapp/connections", body, &out); code != http.StatusCreated {
		t.Fatalf("connecting WhatsApp: %d %s", code, raw)
	}
	x.conn, x.verify = out.Connection, out.VerifyToken
	x.g.webhookURL = m.HTTPURL() + out.WebhookPath
	return x
}

// userCalls is a WhatsApp user calling the business: the pion peer's
// offer in a connect webhook, switchboard's pre_accept at once with its
// answer, which the user's peer takes.
func (x *waFixture) userCalls(t *testing.T, callID string) *visitor {
	t.Helper()
	user := newVisitor(t)
	if code := x.g.post(t, x.g.connect(callID, waUser, user.offer(t)), ""); code != http.StatusOK {
		t.Fatalf("connect webhook: %d", code)
	}
	pre := x.g.expect(t, "pre_accept", callID)
	if err := user.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: pre.SDP}); err != nil {
		t.Fatal(err)
	}
	return user
}

// A WhatsApp user's call reaches the operator as a WhatsApp call: the
// connect webhook's offer is answered at once with pre_accept, the
// operator's answer sends accept, Opus flows both ways unchanged, and the
// user's terminate ends the call. The record says whatsapp, the user's
// number, the WhatsApp call ID. A webhook with a bad signature is refused
// and changes nothing; a replayed one is ignored; both are counted.
func TestWhatsAppUserCallAnsweredByOperator(t *testing.T) {
	x := mustWhatsApp(t, nil)
	op := mustOperator(t, x.m, x.f.Operators[0])

	// Meta's subscription handshake.
	hs := func(token string) (int, string) {
		resp, err := http.Get(x.g.webhookURL + "?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=" + token)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := hs(x.verify); code != http.StatusOK || body != "1158201444" {
		t.Errorf("handshake with the verify token: %d %q", code, body)
	}
	if code, body := hs("sbv_wrong"); code != http.StatusForbidden || strings.Contains(body, "1158201444") {
		t.Errorf("handshake with a wrong token: %d %q", code, body)
	}

	// A forged connect: signed with another secret. Nothing rings, nothing
	// is asked of the Graph API.
	const callID = "wacid.HBgNNjI4MTM2MTkwNTEzMxrtLopSdPMwd"
	forged := newVisitor(t)
	if code := x.g.post(t, x.g.connect("wacid.forged", waUser, forged.offer(t)), "not-the-app-secret"); code != http.StatusForbidden {
		t.Errorf("a connect with a bad signature: %d", code)
	}
	x.g.quiet(t, 300*time.Millisecond)
	select {
	case in := <-op.Incoming():
		t.Fatalf("a forged webhook rang the operator: %+v", in)
	default:
	}

	user := x.userCalls(t, callID)
	in := waitIncoming(t, op)
	if in.Channel != sb.ChannelWhatsApp || !strings.HasSuffix(in.From, waUser[len(waUser)-4:]) || in.To != waBusiness {
		t.Errorf("the operator was offered %+v: want a WhatsApp call from %s to %s", in, waUser, waBusiness)
	}
	// Meta retries a webhook it thinks was lost: the same connect again.
	if code := x.g.post(t, x.g.connect(callID, waUser, user.pc.LocalDescription().SDP), ""); code != http.StatusOK {
		t.Errorf("a replayed connect: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	accept := x.g.expect(t, "accept", callID)
	if accept.SDP == "" {
		t.Error("accept without our SDP answer")
	}
	if err := op.WaitConnected(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	talk(t, user, op)

	term := x.g.terminate(callID, "USER_INITIATED")
	if code := x.g.post(t, term, ""); code != http.StatusOK {
		t.Fatalf("terminate webhook: %d", code)
	}
	rec := waitCallEnded(t, x.m, x.f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.Channel != sb.ChannelWhatsApp || rec.From != waUser ||
		rec.To != waBusiness || rec.ExternalRef != callID || rec.Codec != "opus" || rec.FromCaller.Packets < 45 || rec.Source != "whatsapp:"+waPhoneID {
		t.Errorf("record: %q by %q, channel %q, from %q to %q, ref %q, codec %q, source %q, %d packets from the user",
			rec.Status, rec.HangupBy, rec.Channel, rec.From, rec.To, rec.ExternalRef, rec.Codec, rec.Source, rec.FromCaller.Packets)
	}
	// The user hung up: no terminate of ours follows theirs, and the
	// terminate replayed changes nothing.
	if code := x.g.post(t, term, ""); code != http.StatusOK {
		t.Errorf("a replayed terminate: %d", code)
	}
	if code := x.g.post(t, x.g.terminate("wacid.never-seen", "USER_INITIATED"), ""); code != http.StatusOK {
		t.Errorf("a terminate for an unknown call: %d", code)
	}
	x.g.quiet(t, 300*time.Millisecond)
	counts := scrape(t, x.m)
	for result, min := range map[string]float64{"bad_signature": 1, "replay": 2, "unknown_call": 1, "handshake_refused": 1} {
		if got := counts[`switchboard_whatsapp_webhooks_total{result="`+result+`"}`]; got < min {
			t.Errorf("webhooks counted %s: %v, want at least %v", result, got, min)
		}
	}

	// The admin's list shows the connection and no secret; the audit log
	// names its creation.
	code, raw := apiCall(t, x.m, x.admin, http.MethodGet, "/v1/whatsapp/connections", nil, nil)
	if code != http.StatusOK || !strings.Contains(raw, waPhoneID) || strings.Contains(raw, waAppSecret) || strings.Contains(raw, waToken) ||
		strings.Contains(raw, x.verify) {
		t.Errorf("connections: %d %s", code, raw)
	}
	if code, raw := apiCall(t, x.m, x.admin, http.MethodGet, "/v1/audit", nil, nil); code != http.StatusOK || !strings.Contains(raw, "whatsapp.create") {
		t.Errorf("audit: %d, whatsapp.create missing", code)
	}
}

// Nobody can take a WhatsApp user's call: switchboard rejects it on
// WhatsApp (after pre_accept), and the record says why.
func TestWhatsAppUserCallNobodyAvailableRejected(t *testing.T) {
	x := mustWhatsApp(t, nil)
	const callID = "wacid.HBgNNjI4MTM2MTkwNTEzMxrtNobody"
	x.userCalls(t, callID)
	x.g.expect(t, "reject", callID)
	var page struct {
		Calls []*sb.Call `json:"calls"`
	}
	apiGet(t, x.m, x.f.APIKey, "/v1/calls", &page)
	if len(page.Calls) != 1 {
		t.Fatalf("%d calls recorded", len(page.Calls))
	}
	rec := waitCallEnded(t, x.m, x.f.APIKey, page.Calls[0].ID)
	if rec.Status != sb.CallNoAnswer || rec.FailureStage != sb.StageRouting || rec.Reason != "no operator available" ||
		rec.Channel != sb.ChannelWhatsApp || rec.ExternalRef != callID || rec.From != waUser || rec.AnsweredAt != nil {
		t.Errorf("record: %q at %q (%q), channel %q, ref %q, from %q, answered %v", rec.Status, rec.FailureStage, rec.Reason,
			rec.Channel, rec.ExternalRef, rec.From, rec.AnsweredAt)
	}
	x.g.quiet(t, 300*time.Millisecond) // no terminate after the reject
}

// The operator hangs up a WhatsApp user's call: switchboard terminates
// it on WhatsApp.
func TestWhatsAppOperatorHangsUp(t *testing.T) {
	x := mustWhatsApp(t, nil)
	op := mustOperator(t, x.m, x.f.Operators[0])
	const callID = "wacid.HBgNNjI4MTM2MTkwNTEzMxrtHangup"
	x.userCalls(t, callID)
	in := waitIncoming(t, op)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	x.g.expect(t, "accept", callID)
	if err := op.WaitConnected(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := op.Hangup(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	x.g.expect(t, "terminate", callID)
	rec := waitCallEnded(t, x.m, x.f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyOperator {
		t.Errorf("record: %q by %q", rec.Status, rec.HangupBy)
	}
	// WhatsApp's terminate that follows ours ends nothing more.
	if code := x.g.post(t, x.g.terminate(callID, "USER_INITIATED"), ""); code != http.StatusOK {
		t.Errorf("terminate after ours: %d", code)
	}
	x.g.quiet(t, 300*time.Millisecond)
}

// An operator calls a WhatsApp user: connect carries our offer, the
// user's phone rings (status webhook), the user's answer arrives in a
// connect webhook, and Opus flows both ways; the user hangs up. A user
// who declines is recorded as rejected. A call to a user who gave no
// permission is refused by WhatsApp (138006) and recorded as such; a
// permission request can then be sent.
func TestWhatsAppBusinessInitiatedCall(t *testing.T) {
	x := mustWhatsApp(t, nil)
	op := mustOperator(t, x.m, x.f.Operators[0])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	id, err := op.Dial(ctx, "whatsapp:"+waUser)
	if err != nil {
		t.Fatal(err)
	}
	conn := x.g.expect(t, "connect", "")
	if conn.To != strings.TrimPrefix(waUser, "+") {
		t.Errorf("connect to %q", conn.To)
	}
	user := newVisitor(t)
	if err := user.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: conn.SDP}); err != nil {
		t.Fatal(err)
	}
	answer, err := user.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(user.pc)
	if err := user.pc.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if code := x.g.post(t, x.g.status(conn.CallID, "RINGING"), ""); code != http.StatusOK {
		t.Fatalf("ringing: %d", code)
	}
	if code := x.g.post(t, x.g.answer(conn.CallID, waUser, user.pc.LocalDescription().SDP), ""); code != http.StatusOK {
		t.Fatalf("answer: %d", code)
	}
	if code := x.g.post(t, x.g.status(conn.CallID, "ACCEPTED"), ""); code != http.StatusOK {
		t.Fatalf("accepted: %d", code)
	}
	if err := op.WaitConnected(ctx, id); err != nil {
		t.Fatal(err)
	}
	talk(t, user, op)
	if code := x.g.post(t, x.g.terminate(conn.CallID, "BUSINESS_INITIATED"), ""); code != http.StatusOK {
		t.Fatalf("terminate: %d", code)
	}
	rec := waitCallEnded(t, x.m, x.f.APIKey, id)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.Direction != sb.Outbound || rec.Channel != sb.ChannelWhatsApp ||
		rec.To != waUser || rec.ExternalRef != conn.CallID || rec.Codec != "opus" {
		t.Errorf("record: %q by %q, %s, channel %q, to %q, ref %q, codec %q", rec.Status, rec.HangupBy, rec.Direction, rec.Channel, rec.To,
			rec.ExternalRef, rec.Codec)
	}
	if ev := callEvents(t, x.m, x.f.APIKey, id); !hasInOrder(ev, sb.EventDialing, sb.EventRinging, sb.EventAnswered) {
		t.Errorf("timeline %v", ev)
	}
	x.g.quiet(t, 300*time.Millisecond) // they hung up: no terminate of ours

	// The user declines: REJECTED, then WhatsApp's terminate.
	id, err = op.Dial(ctx, "whatsapp:"+waUser)
	if err != nil {
		t.Fatal(err)
	}
	conn = x.g.expect(t, "connect", "")
	for _, body := range [][]byte{x.g.status(conn.CallID, "RINGING"), x.g.status(conn.CallID, "REJECTED"), x.g.terminate(conn.CallID, "BUSINESS_INITIATED")} {
		if code := x.g.post(t, body, ""); code != http.StatusOK {
			t.Fatalf("webhook: %d", code)
		}
	}
	rec = waitCallEnded(t, x.m, x.f.APIKey, id)
	if rec.Status != sb.CallRejected || rec.HangupBy != sb.PartyCaller || rec.AnsweredAt != nil || !strings.Contains(rec.Reason, "declined") {
		t.Errorf("declined record: %q by %q, reason %q, answered %v", rec.Status, rec.HangupBy, rec.Reason, rec.AnsweredAt)
	}
	if ev := callEvents(t, x.m, x.f.APIKey, id); !hasInOrder(ev, sb.EventDialing, sb.EventRinging, sb.EventRejected) {
		t.Errorf("declined timeline %v", ev)
	}
	x.g.quiet(t, 300*time.Millisecond) // they declined: nothing to terminate

	// A user who gave no permission: WhatsApp refuses connect.
	id, err = op.Dial(ctx, "whatsapp:"+waStranger)
	if err != nil {
		t.Fatal(err)
	}
	x.g.expect(t, "connect", "")
	rec = waitCallEnded(t, x.m, x.f.APIKey, id)
	if rec.Status != sb.CallRejected || rec.APIErrorCode != sb.WhatsAppNoPermission || !strings.Contains(rec.Reason, "permission") ||
		rec.FailureLeg != sb.FailedOnTrunk || rec.FailureStage == "" {
		t.Errorf("refused record: %q, api error %d, reason %q, failed on %q at %q", rec.Status, rec.APIErrorCode, rec.Reason, rec.FailureLeg, rec.FailureStage)
	}
	if reason, err := op.WaitEnded(ctx, id); err != nil || !strings.Contains(reason, "permission") {
		t.Errorf("the operator was told %q (%v)", reason, err)
	}
	code, raw := apiCall(t, x.m, x.f.APIKey, http.MethodPost, "/v1/whatsapp/permission-requests",
		map[string]string{"to": waStranger, "text": "We would like to call you about your order."}, nil)
	if code != http.StatusAccepted {
		t.Fatalf("permission request: %d %s", code, raw)
	}
	if a := x.g.expect(t, "call_permission_request", ""); a.To != strings.TrimPrefix(waStranger, "+") {
		t.Errorf("permission request to %q", a.To)
	}
	// The request, a message the business pays for, is on the audit log:
	// who sent it through which connection, and not the number.
	var audit struct {
		Entries []sb.AuditEntry `json:"entries"`
	}
	code, raw = apiCall(t, x.m, x.admin, http.MethodGet, "/v1/audit", nil, &audit)
	found := 0
	for _, e := range audit.Entries {
		if e.Action == "whatsapp.permission_request" {
			found++
			if e.ResourceType != "whatsapp_connection" || e.ResourceID != x.conn.ID.String() || e.ActorKeyID == nil || e.Outcome != "ok" {
				t.Errorf("audit entry %+v", e)
			}
		}
	}
	if code != http.StatusOK || found != 1 || strings.Contains(raw, waStranger[len(waStranger)-7:]) {
		t.Errorf("audit: %d, %d permission requests, the number in it: %v", code, found, strings.Contains(raw, waStranger[len(waStranger)-7:]))
	}
}

// A WhatsApp user's call, with recording consent stated by the tenant's
// backend while it rings, is recorded as it arrived (Opus, nothing
// transcoded) and played back as Ogg Opus through a grant.
func TestWhatsAppCallRecordedWithConsent(t *testing.T) {
	g := mustGrantFixture(t, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600})
	x := mustWhatsAppOn(t, g.m, g.f)
	const callID = "wacid.HBgNNjI4MTM2MTkwNTEzMxrtRecorded"
	user := x.userCalls(t, callID)
	in := waitIncoming(t, g.op)
	if code, raw := apiCall(t, g.m, g.f.APIKey, http.MethodPost, "/v1/calls/"+in.CallID.String()+"/consent", map[string]bool{"given": true}, nil); code >= 300 {
		t.Fatalf("consent: %d %s", code, raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	x.g.expect(t, "accept", callID)
	if err := g.op.WaitConnected(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	const frames = 50
	toOperator := make(chan struct{}, frames)
	g.op.SetAudioSink(func(p *rtp.Packet) {
		if bytes.HasPrefix(p.Payload, []byte{0x48, 'c'}) {
			toOperator <- struct{}{}
		}
	})
	for i := range frames {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i), Timestamp: uint32(960 * i), SSRC: 78},
			Payload: opusFrame('c', i)}
		if err := user.track.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
		if err := g.op.SendAudio(opusFrame('o', i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the pace of audio
	}
	for range frames * 9 / 10 { // the recording's tap is on their way
		select {
		case <-toOperator:
		case <-ctx.Done():
			t.Fatal("the user's frames did not reach the operator")
		}
	}
	if code := x.g.post(t, x.g.terminate(callID, "USER_INITIATED"), ""); code != http.StatusOK {
		t.Fatalf("terminate: %d", code)
	}
	if rec := waitCallEnded(t, g.m, g.f.APIKey, in.CallID); rec.Codec != "opus" || rec.Channel != sb.ChannelWhatsApp {
		t.Fatalf("record: codec %q, channel %q", rec.Codec, rec.Channel)
	}
	checkOggOpus(t, g.admin, in.CallID, frames)
}

// TestChromiumShowsWhatsAppCall: the operator page in a real browser shows
// a WhatsApp user's call as a WhatsApp call, and answering it on the page
// accepts it on WhatsApp.
func TestChromiumShowsWhatsAppCall(t *testing.T) {
	if !runInPrivateNetns(t, "TestChromiumShowsWhatsAppCall") {
		return
	}
	x := mustWhatsApp(t, nil)
	ctx := newChromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	run, poll := browserSteps(t, ctx)
	operatorAvailable(run, poll, x.m.HTTPURL(), x.f.Operators[0].Email)

	const callID = "wacid.HBgNNjI4MTM2MTkwNTEzMxrtChromium"
	x.userCalls(t, callID)
	run("incoming call shown", chromedp.WaitVisible(chromedp.CSS("#answer")))
	label, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#channel")))
	if err != nil {
		t.Fatal(err)
	}
	caller, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#caller")))
	if err != nil {
		t.Fatal(err)
	}
	if label != "WhatsApp" || !strings.Contains(caller, waUser[len(waUser)-4:]) {
		t.Errorf("the page shows %q from %q: want a WhatsApp call from %s", label, caller, waUser)
	}
	run("answer", chromedp.Click(chromedp.CSS("#answer")))
	x.g.expect(t, "accept", callID)
	poll("connected", `document.querySelector("#call-state").textContent === "connected"`)
	run("hang up", chromedp.Click(chromedp.CSS("#hangup")))
	x.g.expect(t, "terminate", callID)
}

// Click-to-call to a WhatsApp user: the operator is rung first (the offer
// says WhatsApp), and once they take it connect goes out; the operator
// giving up before the user answers terminates the call on WhatsApp. The
// connection is the admin's alone: another tenant's admin neither sees
// nor deletes it; once deleted, its webhook is not found and its calls'
// records keep its name.
func TestWhatsAppClickToCallAndConnections(t *testing.T) {
	x := mustWhatsApp(t, nil)
	op := mustOperator(t, x.m, x.f.Operators[0])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var placed struct {
		CallID sb.ID `json:"call_id"`
	}
	if code, raw := apiCall(t, x.m, x.f.APIKey, http.MethodPost, "/v1/calls",
		map[string]string{"operator_id": x.f.Operators[0].ID.String(), "number": "whatsapp:" + waUser}, &placed); code >= 300 {
		t.Fatalf("click-to-call: %d %s", code, raw)
	}
	in := waitIncoming(t, op)
	if in.Channel != sb.ChannelWhatsApp || in.CallID != placed.CallID {
		t.Errorf("the operator was offered %+v", in)
	}
	x.g.quiet(t, 200*time.Millisecond) // nothing is dialled before the operator takes it
	accepted := make(chan error, 1)
	go func() { accepted <- op.Accept(ctx, in.CallID) }() // returns at the answer, or at the end
	conn := x.g.expect(t, "connect", "")
	if code := x.g.post(t, x.g.status(conn.CallID, "RINGING"), ""); code != http.StatusOK {
		t.Fatalf("ringing: %d", code)
	}
	if err := op.Hangup(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	x.g.expect(t, "terminate", conn.CallID)
	if err := <-accepted; err != nil {
		t.Errorf("accepting the click-to-call: %v", err)
	}
	rec := waitCallEnded(t, x.m, x.f.APIKey, in.CallID)
	if rec.Status != sb.CallCanceled || rec.HangupBy != sb.PartyOperator || rec.ExternalRef != conn.CallID || rec.Channel != sb.ChannelWhatsApp {
		t.Errorf("record: %q by %q, ref %q, channel %q", rec.Status, rec.HangupBy, rec.ExternalRef, rec.Channel)
	}

	other := mustProvision(t, x.m, "Other", "3000", 0)
	_, otherAdmin, err := metadata.NewAPIKeyService(x.m.DB).CreateAPIKey(context.Background(), other.Tenant.ID, sb.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Connections []sb.WhatsAppConnection `json:"connections"`
	}
	if code, raw := apiCall(t, x.m, otherAdmin, http.MethodGet, "/v1/whatsapp/connections", nil, &list); code != http.StatusOK || len(list.Connections) != 0 {
		t.Errorf("another tenant's list: %d %s", code, raw)
	}
	path := "/v1/whatsapp/connections/" + x.conn.ID.String()
	if code, _ := apiCall(t, x.m, otherAdmin, http.MethodDelete, path, nil, nil); code != http.StatusNotFound {
		t.Errorf("another tenant's admin deleting the connection: %d", code)
	}
	if code, _ := apiCall(t, x.m, x.f.APIKey, http.MethodDelete, path, nil, nil); code != http.StatusForbidden {
		t.Errorf("a supervisor deleting the connection: %d", code)
	}
	if code, raw := apiCall(t, x.m, x.admin, http.MethodDelete, path, nil, nil); code != http.StatusNoContent {
		t.Fatalf("deleting the connection: %d %s", code, raw)
	}
	if code := x.g.post(t, x.g.terminate(conn.CallID, "BUSINESS_INITIATED"), ""); code != http.StatusNotFound {
		t.Errorf("a webhook to the deleted connection: %d", code)
	}
	if rec := waitCallEnded(t, x.m, x.f.APIKey, in.CallID); rec.TrunkName != "Support line" {
		t.Errorf("the call's record names its connection %q", rec.TrunkName)
	}
	if code, raw := apiCall(t, x.m, x.admin, http.MethodGet, "/v1/audit", nil, nil); code != http.StatusOK || !strings.Contains(raw, "whatsapp.delete") {
		t.Errorf("audit: %d, whatsapp.delete missing", code)
	}
}

// However a WhatsApp call ends on our side, WhatsApp hears of it, once:
// a user's call whose pre_accept WhatsApp refuses is rejected; one whose
// accept WhatsApp refuses as the operator answers is rejected; a call we
// placed whose answer cannot be taken is terminated. Otherwise the call
// would stay up (ringing, or connected and silent) on the user's phone.
func TestWhatsAppFailedCallsEndedOnWhatsApp(t *testing.T) {
	x := mustWhatsApp(t, nil)
	op := mustOperator(t, x.m, x.f.Operators[0])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The operator answers; WhatsApp refuses the accept.
	const refusedAccept = "wacid.HBgNNjI4MTM2MTkwNTEzMxrtRefusedAccept"
	x.g.refuse("accept")
	x.userCalls(t, refusedAccept)
	in := waitIncoming(t, op)
	accepted := make(chan error, 1)
	go func() { accepted <- op.Accept(ctx, in.CallID) }()
	x.g.expect(t, "accept", refusedAccept)
	x.g.expect(t, "reject", refusedAccept)
	<-accepted // refused or ended: the call is over either way
	rec := waitCallEnded(t, x.m, x.f.APIKey, in.CallID)
	if rec.Status != sb.CallFailed || rec.AnsweredAt != nil || !strings.Contains(rec.Reason, "answer not acknowledged") {
		t.Errorf("record: %q (%q), answered %v", rec.Status, rec.Reason, rec.AnsweredAt)
	}
	x.g.quiet(t, 300*time.Millisecond) // one reject, nothing after it

	// WhatsApp refuses pre_accept: nothing rings, and the call is rejected.
	const refusedPreAccept = "wacid.HBgNNjI4MTM2MTkwNTEzMxrtRefusedPre"
	x.g.refuse("pre_accept")
	user := newVisitor(t)
	if code := x.g.post(t, x.g.connect(refusedPreAccept, waUser, user.offer(t)), ""); code != http.StatusOK {
		t.Fatalf("connect webhook: %d", code)
	}
	x.g.expect(t, "pre_accept", refusedPreAccept)
	x.g.expect(t, "reject", refusedPreAccept)
	x.g.quiet(t, 300*time.Millisecond)
	select {
	case in := <-op.Incoming():
		t.Errorf("a call whose pre_accept failed rang the operator: %+v", in)
	default:
	}

	// A call we place: the user accepts with an answer that cannot be
	// taken, so the media never comes; the call is terminated.
	id, err := op.Dial(ctx, "whatsapp:"+waUser)
	if err != nil {
		t.Fatal(err)
	}
	conn := x.g.expect(t, "connect", "")
	waitPlaced(t, x.m, x.f.APIKey, id, conn.CallID)
	if code := x.g.post(t, x.g.answer(conn.CallID, waUser, "v=0\r\nnot a session description"), ""); code != http.StatusOK {
		t.Fatalf("answer: %d", code)
	}
	x.g.expect(t, "terminate", conn.CallID)
	if rec := waitCallEnded(t, x.m, x.f.APIKey, id); rec.Status != sb.CallFailed || rec.AnsweredAt != nil {
		t.Errorf("placed call's record: %q (%q), answered %v", rec.Status, rec.Reason, rec.AnsweredAt)
	}
	x.g.quiet(t, 300*time.Millisecond)
}

// Two tenants can connect the same phone number ID (one cannot block the
// other's number, or learn it is connected, by connecting it first), and
// each connection's webhooks ring its own tenant's operators, even for
// calls with the same WhatsApp call ID: live calls are the connection's.
func TestWhatsAppSameNumberIDInTwoTenants(t *testing.T) {
	a := mustWhatsApp(t, nil)
	b := mustWhatsAppOn(t, a.m, mustProvision(t, a.m, "Other", "3000", 1))
	if a.conn.PhoneNumberID != b.conn.PhoneNumberID || a.conn.ID == b.conn.ID {
		t.Fatalf("connections %+v and %+v", a.conn, b.conn)
	}
	opA, opB := mustOperator(t, a.m, a.f.Operators[0]), mustOperator(t, b.m, b.f.Operators[0])
	const callID = "wacid.HBgNNjI4MTM2MTkwNTEzMxrtTwoTenants"
	a.userCalls(t, callID)
	inA := waitIncoming(t, opA)
	b.userCalls(t, callID) // the same ID through the other connection: not a replay
	inB := waitIncoming(t, opB)
	if inA.CallID == inB.CallID {
		t.Fatal("one call offered to both tenants")
	}
	for _, x := range []*waFixture{a, b} {
		if code := x.g.post(t, x.g.terminate(callID, "USER_INITIATED"), ""); code != http.StatusOK {
			t.Fatalf("terminate: %d", code)
		}
	}
	if ra, rb := waitCallEnded(t, a.m, a.f.APIKey, inA.CallID), waitCallEnded(t, b.m, b.f.APIKey, inB.CallID); ra.TrunkID == nil || rb.TrunkID == nil ||
		*ra.TrunkID != a.conn.ID || *rb.TrunkID != b.conn.ID || ra.HangupBy != sb.PartyCaller || rb.HangupBy != sb.PartyCaller {
		t.Errorf("records: through %v by %q, through %v by %q", ra.TrunkID, ra.HangupBy, rb.TrunkID, rb.HangupBy)
	}
}

// realCallID is a WhatsApp call ID shaped as Meta makes them: "wacid."
// and the base64 of a protobuf holding the user's number, the call's
// token and the business's number.
func realCallID(token string) string {
	b := append([]byte{0x1c, 0x18, byte(len(waUser) - 1)}, strings.TrimPrefix(waUser, "+")...)
	b = append(b, 0x15, 0x02, 0x00, 0x12, 0x18, byte(len(token)))
	b = append(b, token...)
	b = append(b, 0x1c, 0x18, byte(len(waBusiness)-1))
	b = append(b, strings.TrimPrefix(waBusiness, "+")...)
	return "wacid." + base64.StdEncoding.EncodeToString(append(b, 0x15, 0x02, 0x00, 0x00))
}

// A tenant that masks numbers for its operators masks the numbers a
// WhatsApp call ID holds too, wherever an operator reads it: the caller
// shown with their earlier calls, the operator's calls, and their CSV
// export. A supervisor still sees it whole.
func TestWhatsAppCallIDMaskedWithNumbers(t *testing.T) {
	x := mustWhatsApp(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := metadata.NewTenantService(x.m.DB).SetPrivacyPolicy(ctx, x.f.Tenant.ID,
		sb.PrivacyPolicy{CallRetentionDays: 30, QualityRetentionDays: 30, MaskOperatorNumbers: true}); err != nil {
		t.Fatal(err)
	}
	first, second := realCallID("44A72F9C9B85F8C4659D1D41D3C96228"), realCallID("0B1E3C5D7F9A2B4C6D8E0F1A3B5C7D9E")
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(first, "wacid.")); err != nil || !bytes.Contains(raw, []byte(waUser[1:])) {
		t.Fatalf("the call ID does not hold the number as Meta's do: %v", err)
	}
	// What of a call ID gives a number away: its base64 as a whole, or
	// the part that encodes the user's number.
	leaks := func(where, s string) {
		t.Helper()
		for _, id := range []string{first, second} {
			if strings.Contains(s, id) || strings.Contains(s, id[len("wacid."):len("wacid.")+20]) {
				t.Errorf("%s shows a WhatsApp call ID whole: %s", where, s)
			}
		}
	}
	op := mustOperator(t, x.m, x.f.Operators[0]) // a new socket reads the policy
	x.userCalls(t, first)
	in := waitIncoming(t, op)
	if err := op.Decline(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	x.g.expect(t, "reject", first)
	waitCallEnded(t, x.m, x.f.APIKey, in.CallID)

	x.userCalls(t, second)
	in2 := waitIncoming(t, op)
	info, err := op.Caller(ctx, in2.CallID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(info)
	leaks("the caller shown", string(b))
	if info.ExternalRef != sb.MaskExternalRef(second) || len(info.Earlier) != 1 || info.Earlier[0].ExternalRef != sb.MaskExternalRef(first) ||
		sb.MaskExternalRef(first) == sb.MaskExternalRef(second) {
		t.Errorf("the caller shown: ref %q, earlier %+v: want %q and %q", info.ExternalRef, info.Earlier, sb.MaskExternalRef(second), sb.MaskExternalRef(first))
	}
	if err := op.Accept(ctx, in2.CallID); err != nil { // the operator's calls are those they took
		t.Fatal(err)
	}
	x.g.expect(t, "accept", second)
	if err := op.WaitConnected(ctx, in2.CallID); err != nil {
		t.Fatal(err)
	}
	if err := op.Hangup(ctx, in2.CallID); err != nil {
		t.Fatal(err)
	}
	x.g.expect(t, "terminate", second)
	waitCallEnded(t, x.m, x.f.APIKey, in2.CallID)

	operator := mustLogin(t, x.m, x.f.Operators[0])
	var mine struct{ Calls []sb.Call }
	code, raw := operator.do(http.MethodGet, "/v1/calls", "", &mine)
	leaks("the operator's calls", raw)
	if code != http.StatusOK || len(mine.Calls) != 1 || mine.Calls[0].ExternalRef != sb.MaskExternalRef(second) {
		t.Errorf("the operator's calls: %d %s", code, raw)
	}
	code, raw = operator.do(http.MethodGet, "/v1/calls?format=csv", "", nil)
	leaks("the operator's export", raw)
	if code != http.StatusOK || !strings.Contains(raw, sb.MaskExternalRef(second)) {
		t.Errorf("the operator's export: %d %s", code, raw)
	}
	var all struct {
		Calls []*sb.Call `json:"calls"`
	}
	if apiGet(t, x.m, x.f.APIKey, "/v1/calls", &all); len(all.Calls) != 2 || all.Calls[0].ExternalRef != second {
		t.Errorf("the supervisor's calls: %+v", all.Calls)
	}
}

// waitPlaced waits until the call's record names the WhatsApp call ID
// connect returned: switchboard knows the call, and webhooks about it are
// taken (one posted as connect's answer is still on its way is not).
func waitPlaced(tb testing.TB, m *Main, key string, id sb.ID, callID string) {
	tb.Helper()
	waitCallRecord(tb, m, key, id, "name WhatsApp call "+callID, func(c *sb.Call) bool { return c.ExternalRef == callID })
}
