package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/cookiejar"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/api"
	"github.com/switchboard-voice/switchboard/apiclient"
	"github.com/switchboard-voice/switchboard/internal/apispec"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// apiClient is the generated REST client for m, signed in with key (none
// when empty), every answer it gets checked against the API's description.
func apiClient(tb testing.TB, m *Main, key string) *apiclient.ClientWithResponses {
	tb.Helper()
	var edits []apiclient.RequestEditorFn
	if key != "" {
		edits = append(edits, apiclient.BearerKey(key))
	}
	return typedClient(tb, m, apispec.Load(tb, api.Description()), nil, edits...)
}

// typedClient is the generated REST client for m whose answers spec
// checks, keeping cookies in jar (nil: none), each request edited by edits.
func typedClient(tb testing.TB, m *Main, spec *apispec.Spec, jar http.CookieJar, edits ...apiclient.RequestEditorFn) *apiclient.ClientWithResponses {
	tb.Helper()
	opts := []apiclient.ClientOption{apiclient.WithHTTPClient(spec.Client(tb, jar))}
	for _, e := range edits {
		opts = append(opts, apiclient.WithRequestEditorFn(e))
	}
	c, err := apiclient.NewClientWithResponses(m.HTTPURL(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// answer is any of the client's typed answers.
type answer interface{ StatusCode() int }

// answers returns a check that an answer has the status want; what names the
// request in the failure.
func answers(tb testing.TB, want int, what string) func(answer, error) {
	return func(res answer, err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		if got := res.StatusCode(); got != want {
			tb.Errorf("%s: %d %s, want %d", what, got, reflect.ValueOf(res).Elem().FieldByName("Body").Bytes(), want)
		}
	}
}

// TestEveryRouteAnswersAsDescribed: the routes the service serves are the
// operations api/openapi.json describes, and every operation, driven
// through the generated client against the whole service (PostgreSQL,
// S3, SIP, an operator), answers a success and, where it declares any, an
// error whose status, content type and body are as described. The
// transport checks each answer; the end counts what was seen.
func TestEveryRouteAnswersAsDescribed(t *testing.T) {
	spec := apispec.Load(t, api.Description())
	const metricsToken = "metrics-token-of-the-test"
	g := mustGrantFixtureWith(t, sb.SupportPolicy{Access: true, Approval: true, MaxTTLSeconds: 3600}, map[string]string{"metrics-token": metricsToken})
	m, acme := g.m, g.f.Tenant.ID

	served, err := apispec.Routes(m.API.Handler())
	if err != nil {
		t.Fatal(err)
	}
	if undescribed, unserved := spec.CompareRoutes(served); len(undescribed)+len(unserved) > 0 {
		t.Fatalf("routes served but not in api/openapi.json (describe each with an operationId, schemas and errors):\n  %s\n"+
			"operations described but not served:\n  %s", strings.Join(undescribed, "\n  "), strings.Join(unserved, "\n  "))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := func(k string) *apiclient.ClientWithResponses {
		return typedClient(t, m, spec, nil, apiclient.BearerKey(k))
	}
	as := func(p *person) *apiclient.ClientWithResponses {
		edits := []apiclient.RequestEditorFn{}
		if p.tenant != "" {
			edits = append(edits, func(_ context.Context, r *http.Request) error {
				r.Header.Set("X-Switchboard-Tenant", p.tenant)
				return nil
			})
		}
		return typedClient(t, m, spec, p.client.Jar, edits...)
	}
	// An admin key per part: each key may send 20 requests a second.
	newAdmin := func() *apiclient.ClientWithResponses { return key(roleKey(t, m, acme, sb.RoleAdmin)) }
	anon, admin, sup := typedClient(t, m, spec, nil), newAdmin(), key(g.f.APIKey)
	support, operator, adminPerson := as(g.support), as(g.operator), as(g.admin)
	nobody := sb.NewID()
	limit0 := 0
	badJSON := func() *strings.Reader { return strings.NewReader(`{"unknown": 1}`) }

	// The service itself.
	answers(t, 200, "healthz")(anon.GetHealthWithResponse(ctx))
	answers(t, 200, "readyz")(anon.GetReadinessWithResponse(ctx))
	answers(t, 200, "openapi.json")(anon.GetOpenAPIWithResponse(ctx))
	answers(t, 401, "metrics without the token")(anon.GetMetricsWithResponse(ctx))
	answers(t, 200, "metrics")(key(metricsToken).GetMetricsWithResponse(ctx))
	answers(t, 401, "operator socket without a login")(anon.OperatorSocketWithResponse(ctx))

	// Logins.
	jar, _ := cookiejar.New(nil)
	login := typedClient(t, m, spec, jar)
	answers(t, 401, "login, wrong password")(login.LoginWithResponse(ctx, apiclient.Credentials{Email: g.adminUser.Email, Password: "wrong"}))
	answers(t, 200, "login")(login.LoginWithResponse(ctx, apiclient.Credentials{Email: g.adminUser.Email, Password: testPassword}))
	answers(t, 415, "login as a form")(login.LoginWithBodyWithResponse(ctx, "application/x-www-form-urlencoded", strings.NewReader("email=x")))
	me, err := login.GetMeWithResponse(ctx)
	answers(t, 200, "me")(me, err)
	if me.JSON200 == nil || me.JSON200.User == nil || me.JSON200.User.ID != g.adminUser.ID {
		t.Errorf("me: %s, want the admin", me.Body)
	}
	answers(t, 200, "me as a key")(sup.GetMeWithResponse(ctx))
	answers(t, 204, "logout")(login.LogoutWithResponse(ctx))
	answers(t, 401, "me after logout")(login.GetMeWithResponse(ctx))
	answers(t, 200, "no session")(login.GetSessionWithResponse(ctx))
	answers(t, 200, "a session")(adminPerson.GetSessionWithResponse(ctx))

	// The recorded call, its record and its diagnosis.
	call := g.callID
	answers(t, 200, "list calls")(sup.ListCallsWithResponse(ctx, &apiclient.ListCallsParams{}))
	answers(t, 400, "list calls, limit 0")(sup.ListCallsWithResponse(ctx, &apiclient.ListCallsParams{Limit: &limit0}))
	answers(t, 200, "get call")(sup.GetCallWithResponse(ctx, call))
	answers(t, 404, "get no call")(sup.GetCallWithResponse(ctx, nobody))
	answers(t, 200, "label call")(sup.UpdateCallWithResponse(ctx, call, apiclient.CallChange{ExternalRef: ref("crm-1"), Labels: &[]string{"vip"}}))
	answers(t, 400, "label call, unknown field")(sup.UpdateCallWithBodyWithResponse(ctx, call, "application/json", badJSON()))
	answers(t, 200, "events")(sup.ListCallEventsWithResponse(ctx, call))
	answers(t, 404, "no call's events")(sup.ListCallEventsWithResponse(ctx, nobody))
	answers(t, 200, "recording")(sup.GetCallRecordingWithResponse(ctx, call))
	answers(t, 404, "no call's recording")(sup.GetCallRecordingWithResponse(ctx, nobody))
	answers(t, 200, "trace")(sup.GetCallTraceWithResponse(ctx, call))
	answers(t, 404, "no call's trace")(sup.GetCallTraceWithResponse(ctx, nobody))
	answers(t, 200, "quality")(sup.GetCallQualityWithResponse(ctx, call))
	answers(t, 404, "no call's quality")(sup.GetCallQualityWithResponse(ctx, nobody))
	answers(t, 200, "pcap")(sup.GetCallPcapWithResponse(ctx, call))
	answers(t, 404, "no call's pcap")(sup.GetCallPcapWithResponse(ctx, nobody))
	answers(t, 409, "SIP logging of an ended call")(sup.SetCallSIPLoggingWithResponse(ctx, call, apiclient.SIPLoggingChange{Enabled: true}))
	answers(t, 404, "hang up no call")(sup.HangUpCallWithResponse(ctx, nobody))

	// Access to the recording: requested, approved, played, revoked; another denied.
	req, err := support.RequestGrantWithResponse(ctx, call, apiclient.GrantRequest{Reason: "one-way audio", Ticket: "SUP-1"})
	answers(t, 201, "request a grant")(req, err)
	if req.JSON201 == nil {
		t.Fatalf("grant request: %s", req.Body)
	}
	grant := req.JSON201.ID
	answers(t, 400, "request a grant without a reason")(support.RequestGrantWithResponse(ctx, call, apiclient.GrantRequest{Ticket: "SUP-1"}))
	answers(t, 200, "list grants")(adminPerson.ListGrantsWithResponse(ctx, &apiclient.ListGrantsParams{}))
	answers(t, 400, "list grants, limit 0")(adminPerson.ListGrantsWithResponse(ctx, &apiclient.ListGrantsParams{Limit: &limit0}))
	answers(t, 200, "get grant")(adminPerson.GetGrantWithResponse(ctx, grant))
	answers(t, 404, "get no grant")(adminPerson.GetGrantWithResponse(ctx, nobody))
	answers(t, 403, "play before approval")(support.GetGrantAudioWithResponse(ctx, grant, &apiclient.GetGrantAudioParams{}))
	answers(t, 200, "approve")(adminPerson.ApproveGrantWithResponse(ctx, grant))
	answers(t, 409, "approve twice")(adminPerson.ApproveGrantWithResponse(ctx, grant))
	answers(t, 200, "play")(support.GetGrantAudioWithResponse(ctx, grant, &apiclient.GetGrantAudioParams{}))
	answers(t, 206, "play a range")(support.GetGrantAudioWithResponse(ctx, grant, &apiclient.GetGrantAudioParams{},
		func(_ context.Context, r *http.Request) error { r.Header.Set("Range", "bytes=0-99"); return nil }))
	answers(t, 200, "revoke")(adminPerson.RevokeGrantWithResponse(ctx, grant))
	answers(t, 409, "revoke twice")(adminPerson.RevokeGrantWithResponse(ctx, grant))
	req, err = support.RequestGrantWithResponse(ctx, call, apiclient.GrantRequest{Reason: "echo", Ticket: "SUP-2"})
	answers(t, 201, "request another grant")(req, err)
	answers(t, 200, "deny")(adminPerson.DenyGrantWithResponse(ctx, req.JSON201.ID))
	answers(t, 404, "deny no grant")(adminPerson.DenyGrantWithResponse(ctx, nobody))

	// The audit log.
	answers(t, 200, "audit")(admin.ListAuditWithResponse(ctx, &apiclient.ListAuditParams{}))
	answers(t, 400, "audit, limit 0")(admin.ListAuditWithResponse(ctx, &apiclient.ListAuditParams{Limit: &limit0}))
	answers(t, 200, "verify audit")(admin.VerifyAuditWithResponse(ctx))
	answers(t, 403, "verify audit as an operator")(operator.VerifyAuditWithResponse(ctx))

	// People and keys.
	admin = newAdmin()
	answers(t, 200, "users")(admin.ListUsersWithResponse(ctx, &apiclient.ListUsersParams{}))
	answers(t, 400, "users, limit 0")(admin.ListUsersWithResponse(ctx, &apiclient.ListUsersParams{Limit: &limit0}))
	made, err := admin.CreateUserWithResponse(ctx, apiclient.UserInput{Email: "new@acme.test", Name: ref("New"), Role: apiclient.UserInputRoleOperator})
	answers(t, 201, "invite")(made, err)
	if made.JSON201 == nil || made.JSON201.PasswordLink == nil {
		t.Fatalf("invite: %s", made.Body)
	}
	answers(t, 400, "invite without an email")(admin.CreateUserWithResponse(ctx, apiclient.UserInput{Role: apiclient.UserInputRoleOperator}))
	newUser := made.JSON201.User.ID
	answers(t, 200, "rename")(admin.UpdateUserWithResponse(ctx, newUser, apiclient.UserChange{Name: ref("Newer")}))
	answers(t, 404, "rename nobody")(admin.UpdateUserWithResponse(ctx, nobody, apiclient.UserChange{Name: ref("Newer")}))
	answers(t, 204, "set a password by the link")(anon.SetPasswordWithResponse(ctx, apiclient.PasswordSet{Token: tokenOf(*made.JSON201.PasswordLink), Password: testPassword}))
	answers(t, 401, "set a password by a spent link")(anon.SetPasswordWithResponse(ctx, apiclient.PasswordSet{Token: tokenOf(*made.JSON201.PasswordLink), Password: testPassword}))
	reset, err := admin.ResetPasswordWithResponse(ctx, newUser, apiclient.PasswordReset{})
	answers(t, 200, "reset a password")(reset, err)
	answers(t, 404, "reset nobody's password")(admin.ResetPasswordWithResponse(ctx, nobody, apiclient.PasswordReset{}))
	jar, _ = cookiejar.New(nil)
	newcomer := typedClient(t, m, spec, jar)
	answers(t, 200, "newcomer logs in")(newcomer.LoginWithResponse(ctx, apiclient.Credentials{Email: "new@acme.test", Password: testPassword}))
	answers(t, 204, "change own password")(newcomer.ChangeOwnPasswordWithResponse(ctx, apiclient.PasswordChange{OldPassword: testPassword, NewPassword: "a new horse battery"}))
	answers(t, 400, "change own password, too short")(newcomer.ChangeOwnPasswordWithResponse(ctx, apiclient.PasswordChange{OldPassword: "a new horse battery", NewPassword: "x"}))
	answers(t, 200, "keys")(admin.ListAPIKeysWithResponse(ctx, &apiclient.ListAPIKeysParams{}))
	answers(t, 400, "keys, limit 0")(admin.ListAPIKeysWithResponse(ctx, &apiclient.ListAPIKeysParams{Limit: &limit0}))
	newKey, err := admin.CreateAPIKeyWithResponse(ctx, apiclient.APIKeyInput{Role: apiclient.APIKeyInputRoleSupervisor, Label: ref("crm")})
	answers(t, 201, "make a key")(newKey, err)
	answers(t, 400, "make a key of no role")(admin.CreateAPIKeyWithBodyWithResponse(ctx, "application/json", strings.NewReader(`{"role":"king"}`)))
	answers(t, 204, "revoke a key")(admin.RevokeAPIKeyWithResponse(ctx, newKey.JSON201.ApiKey.ID))
	answers(t, 404, "revoke no key")(admin.RevokeAPIKeyWithResponse(ctx, nobody))

	// Trunks, routes, numbers, queues.
	admin = newAdmin()
	trunk, err := admin.CreateTrunkWithResponse(ctx, apiclient.TrunkInput{Name: "Carrier", Allow: &[]string{"192.0.2.0/24"}, Numbers: []string{"5000"}})
	answers(t, 201, "make a trunk")(trunk, err)
	answers(t, 400, "make a trunk without a name")(admin.CreateTrunkWithResponse(ctx, apiclient.TrunkInput{Numbers: []string{"5001"}}))
	tr := trunk.JSON201.Id
	answers(t, 200, "trunks")(admin.ListTrunksWithResponse(ctx, &apiclient.ListTrunksParams{}))
	answers(t, 400, "trunks, limit 0")(admin.ListTrunksWithResponse(ctx, &apiclient.ListTrunksParams{Limit: &limit0}))
	answers(t, 200, "get trunk")(admin.GetTrunkWithResponse(ctx, tr))
	answers(t, 404, "get no trunk")(admin.GetTrunkWithResponse(ctx, nobody))
	answers(t, 200, "rename trunk")(admin.UpdateTrunkWithResponse(ctx, tr, apiclient.TrunkChange{Name: ref("Carrier B")}))
	answers(t, 400, "change trunk, unknown field")(admin.UpdateTrunkWithBodyWithResponse(ctx, tr, "application/json", badJSON()))
	answers(t, 200, "trunk SIP logging")(admin.SetTrunkSIPLoggingWithResponse(ctx, tr, apiclient.SIPLoggingChange{Enabled: true}))
	answers(t, 404, "no trunk's SIP logging")(admin.SetTrunkSIPLoggingWithResponse(ctx, nobody, apiclient.SIPLoggingChange{Enabled: true}))
	answers(t, 200, "set route")(admin.SetRouteWithResponse(ctx, tr, apiclient.RouteChange{Target: ref("127.0.0.1:9")}))
	answers(t, 404, "set no trunk's route")(admin.SetRouteWithResponse(ctx, nobody, apiclient.RouteChange{Target: ref("127.0.0.1:9")}))
	answers(t, 200, "change route")(admin.UpdateRouteWithResponse(ctx, tr, apiclient.RouteChange{Priority: ref(5)}))
	answers(t, 400, "change route, no port")(admin.UpdateRouteWithResponse(ctx, tr, apiclient.RouteChange{Target: ref("no port")}))
	answers(t, 200, "routes")(admin.ListRoutesWithResponse(ctx, &apiclient.ListRoutesParams{}))
	answers(t, 400, "routes, limit 0")(admin.ListRoutesWithResponse(ctx, &apiclient.ListRoutesParams{Limit: &limit0}))
	answers(t, 200, "numbers")(admin.ListNumbersWithResponse(ctx))
	answers(t, 403, "numbers as an operator")(operator.ListNumbersWithResponse(ctx))
	queue, err := admin.CreateQueueWithResponse(ctx, apiclient.QueueInput{Name: "Sales", MaxWaitSeconds: ref[float32](30), Members: &[]sb.ID{g.f.Operators[0].ID}})
	answers(t, 201, "make a queue")(queue, err)
	answers(t, 400, "make a queue without a name")(admin.CreateQueueWithResponse(ctx, apiclient.QueueInput{}))
	q := queue.JSON201.Id
	answers(t, 200, "queues")(admin.ListQueuesWithResponse(ctx, &apiclient.ListQueuesParams{}))
	answers(t, 400, "queues, limit 0")(admin.ListQueuesWithResponse(ctx, &apiclient.ListQueuesParams{Limit: &limit0}))
	answers(t, 200, "get queue")(admin.GetQueueWithResponse(ctx, q))
	answers(t, 404, "get no queue")(admin.GetQueueWithResponse(ctx, nobody))
	answers(t, 200, "rename queue")(admin.UpdateQueueWithResponse(ctx, q, apiclient.QueueChange{Name: ref("Sales EU")}))
	answers(t, 400, "change queue, unknown field")(admin.UpdateQueueWithBodyWithResponse(ctx, q, "application/json", badJSON()))

	// Webhooks.
	admin = newAdmin()
	hook, err := admin.CreateWebhookWithResponse(ctx, apiclient.WebhookInput{Url: "http://127.0.0.1:9/hook", Events: []string{"call.ended"}})
	answers(t, 201, "make a webhook")(hook, err)
	answers(t, 400, "make a webhook for no event")(admin.CreateWebhookWithResponse(ctx, apiclient.WebhookInput{Url: "http://127.0.0.1:9/hook", Events: []string{"call.exploded"}}))
	h := hook.JSON201.Webhook.ID
	answers(t, 200, "webhooks")(admin.ListWebhooksWithResponse(ctx, &apiclient.ListWebhooksParams{}))
	answers(t, 400, "webhooks, limit 0")(admin.ListWebhooksWithResponse(ctx, &apiclient.ListWebhooksParams{Limit: &limit0}))
	answers(t, 200, "change webhook")(admin.UpdateWebhookWithResponse(ctx, h, apiclient.WebhookChange{Events: &[]string{"call.ended", "call.answered"}}))
	answers(t, 400, "change webhook, unknown field")(admin.UpdateWebhookWithBodyWithResponse(ctx, h, "application/json", badJSON()))
	answers(t, 200, "deliveries")(admin.ListWebhookDeliveriesWithResponse(ctx, h))
	answers(t, 404, "no webhook's deliveries")(admin.ListWebhookDeliveriesWithResponse(ctx, nobody))
	answers(t, 201, "add a webhook secret")(admin.AddWebhookSecretWithResponse(ctx, h))
	answers(t, 409, "add a third webhook secret")(admin.AddWebhookSecretWithResponse(ctx, h))
	answers(t, 204, "retire the old webhook secret")(admin.RetireWebhookSecretWithResponse(ctx, h))
	answers(t, 409, "retire the only webhook secret")(admin.RetireWebhookSecretWithResponse(ctx, h))
	answers(t, 404, "add no webhook's secret")(admin.AddWebhookSecretWithResponse(ctx, nobody))
	answers(t, 404, "retire no webhook's secret")(admin.RetireWebhookSecretWithResponse(ctx, nobody))

	// WhatsApp: a business number connected (to the Graph API's emulator),
	// its webhook's handshake and a signed event, a call permission asked.
	admin = newAdmin()
	graph := newGraphEmulator(t)
	permission := apiclient.RequestWhatsAppCallPermissionJSONRequestBody{To: waUser, Text: "May we call you back?"}
	answers(t, 404, "call permission without a connection")(admin.RequestWhatsAppCallPermissionWithResponse(ctx, permission))
	connection := apiclient.CreateWhatsAppConnectionJSONRequestBody{Name: "Support line", PhoneNumberId: waPhoneID, Number: waBusiness,
		GraphUrl: ref(graph.srv.URL + "/v21.0"), AppSecret: ref(waAppSecret), AccessToken: ref(waToken)}
	connected, err := admin.CreateWhatsAppConnectionWithResponse(ctx, connection)
	answers(t, 201, "connect WhatsApp")(connected, err)
	if connected.JSON201 == nil {
		t.Fatalf("connect WhatsApp: %s", connected.Body)
	}
	answers(t, 409, "connect the same number twice")(admin.CreateWhatsAppConnectionWithResponse(ctx, connection))
	wa, verify := connected.JSON201.Connection.Id, connected.JSON201.VerifyToken
	answers(t, 200, "WhatsApp connections")(admin.ListWhatsAppConnectionsWithResponse(ctx, &apiclient.ListWhatsAppConnectionsParams{}))
	answers(t, 400, "WhatsApp connections, limit 0")(admin.ListWhatsAppConnectionsWithResponse(ctx, &apiclient.ListWhatsAppConnectionsParams{Limit: &limit0}))
	answers(t, 200, "WhatsApp handshake")(anon.VerifyWhatsAppWebhookWithResponse(ctx, wa,
		&apiclient.VerifyWhatsAppWebhookParams{HubMode: ref("subscribe"), HubVerifyToken: &verify, HubChallenge: ref("1158201444")}))
	answers(t, 403, "WhatsApp handshake, wrong token")(anon.VerifyWhatsAppWebhookWithResponse(ctx, wa,
		&apiclient.VerifyWhatsAppWebhookParams{HubMode: ref("subscribe"), HubVerifyToken: ref("wrong"), HubChallenge: ref("1158201444")}))
	event := graph.status("wacid.of-no-call-here", "RINGING")
	signed := func(secret string) apiclient.RequestEditorFn {
		return func(_ context.Context, r *http.Request) error {
			r.Header.Set("X-Hub-Signature-256", graph.signature(event, secret))
			return nil
		}
	}
	answers(t, 200, "WhatsApp event")(anon.ReceiveWhatsAppWebhookWithBodyWithResponse(ctx, wa, "application/json", bytes.NewReader(event), signed("")))
	answers(t, 403, "WhatsApp event, wrongly signed")(anon.ReceiveWhatsAppWebhookWithBodyWithResponse(ctx, wa, "application/json", bytes.NewReader(event), signed("not the app secret")))
	answers(t, 202, "call permission")(admin.RequestWhatsAppCallPermissionWithResponse(ctx, permission))
	if a := graph.expect(t, "call_permission_request", ""); a.To != strings.TrimPrefix(waUser, "+") || a.Text != permission.Text {
		t.Errorf("the permission request sent: %+v", a)
	}
	answers(t, 400, "call permission without a text")(admin.RequestWhatsAppCallPermissionWithResponse(ctx, apiclient.RequestWhatsAppCallPermissionJSONRequestBody{To: waUser}))
	answers(t, 204, "disconnect WhatsApp")(admin.DeleteWhatsAppConnectionWithResponse(ctx, wa))
	answers(t, 404, "disconnect WhatsApp twice")(admin.DeleteWhatsAppConnectionWithResponse(ctx, wa))
	answers(t, 404, "WhatsApp event to no connection")(anon.ReceiveWhatsAppWebhookWithBodyWithResponse(ctx, wa, "application/json", bytes.NewReader(event), signed("")))

	// A call in progress: consent, pauses, SIP logging, a transfer, the hang-up.
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	_, in := answeredCall(t, m, phone, g.op, "3000", "2000")
	live := in.CallID
	floor := newAdmin()
	answers(t, 200, "the floor, a call in progress")(floor.GetLiveWithResponse(ctx))
	answers(t, 403, "the floor, as an operator")(operator.GetLiveWithResponse(ctx))
	answers(t, 202, "consent")(sup.SetCallConsentWithResponse(ctx, live, apiclient.ConsentChange{Given: true}))
	answers(t, 400, "consent, unknown field")(sup.SetCallConsentWithBodyWithResponse(ctx, live, "application/json", badJSON()))
	answers(t, 202, "pause")(sup.PauseRecordingWithResponse(ctx, live))
	answers(t, 404, "pause no call")(sup.PauseRecordingWithResponse(ctx, nobody))
	answers(t, 202, "resume")(sup.ResumeRecordingWithResponse(ctx, live))
	answers(t, 404, "resume no call")(sup.ResumeRecordingWithResponse(ctx, nobody))
	answers(t, 200, "call SIP logging")(sup.SetCallSIPLoggingWithResponse(ctx, live, apiclient.SIPLoggingChange{Enabled: true}))
	answers(t, 404, "no call's SIP logging")(sup.SetCallSIPLoggingWithResponse(ctx, nobody, apiclient.SIPLoggingChange{Enabled: true}))
	answers(t, 400, "transfer to nowhere")(sup.TransferCallWithResponse(ctx, live, apiclient.TransferRequest{}))
	answers(t, 202, "transfer to the queue")(sup.TransferCallWithResponse(ctx, live, apiclient.TransferRequest{QueueId: &q}))
	answers(t, 202, "hang up")(sup.HangUpCallWithResponse(ctx, live))
	waitCallEnded(t, m, g.f.APIKey, live)

	// The integrations' calls: a browser caller's token and WHIP session, click-to-call.
	tok, err := sup.CreateWebRTCTokenWithResponse(ctx, apiclient.WebRTCTokenInput{Number: "2000", From: "web:chat-1"})
	answers(t, 201, "browser caller's token")(tok, err)
	answers(t, 404, "token for no number")(sup.CreateWebRTCTokenWithResponse(ctx, apiclient.WebRTCTokenInput{Number: "9999", From: "web:chat-1"}))
	offer := newVisitor(t).offer(t)
	answers(t, 204, "WHIP preflight")(anon.PreflightWHIPWithResponse(ctx))
	answers(t, 401, "WHIP with a forged token")(anon.StartWHIPCallWithBodyWithResponse(ctx, "application/sdp", strings.NewReader(offer), apiclient.BearerKey("sbw_forged")))
	answers(t, 415, "WHIP offer as JSON")(anon.StartWHIPCallWithBodyWithResponse(ctx, "application/json", strings.NewReader(`{}`), apiclient.BearerKey(tok.JSON201.Token)))
	started, err := anon.StartWHIPCallWithBodyWithResponse(ctx, "application/sdp", strings.NewReader(offer), apiclient.BearerKey(tok.JSON201.Token))
	answers(t, 201, "WHIP")(started, err)
	session := strings.TrimPrefix(started.HTTPResponse.Header.Get("Location"), "/v1/whip/")
	answers(t, 204, "WHIP session preflight")(anon.PreflightWHIPCallWithResponse(ctx, session))
	answers(t, 200, "WHIP state")(anon.GetWHIPCallWithResponse(ctx, session))
	answers(t, 404, "no WHIP session's state")(anon.GetWHIPCallWithResponse(ctx, "nope"))
	answers(t, 200, "end WHIP")(anon.EndWHIPCallWithResponse(ctx, session))
	answers(t, 404, "end no WHIP session")(anon.EndWHIPCallWithResponse(ctx, "nope"))
	answers(t, 404, "click-to-call for nobody")(sup.PlaceCallWithResponse(ctx, apiclient.CallPlacement{OperatorId: nobody, Number: "5550100"}))
	placed, err := sup.PlaceCallWithResponse(ctx, apiclient.CallPlacement{OperatorId: g.f.Operators[0].ID, Number: "5550100"})
	answers(t, 201, "click-to-call")(placed, err)
	if placed.JSON201 != nil {
		waitCallEnded(t, m, g.f.APIKey, placed.JSON201.CallId) // the operator lets it ring out
	}

	// Data subjects' rights.
	admin = newAdmin()
	answers(t, 200, "export")(admin.ExportSubjectWithResponse(ctx, apiclient.SubjectRequest{Number: ref("3000"), Reason: "request 1"}))
	answers(t, 400, "export without a reason")(admin.ExportSubjectWithResponse(ctx, apiclient.SubjectRequest{Number: ref("3000")}))
	answers(t, 200, "rectify")(admin.RectifySubjectWithResponse(ctx, apiclient.SubjectRectification{Number: "3000", RightNumber: "3001", Reason: "request 2"}))
	answers(t, 400, "rectify without a reason")(admin.RectifySubjectWithResponse(ctx, apiclient.SubjectRectification{Number: "3001", RightNumber: "3002"}))
	answers(t, 200, "erase")(admin.EraseSubjectWithResponse(ctx, apiclient.SubjectRequest{Number: ref("3001"), Reason: "request 3"}))
	answers(t, 400, "erase without a reason")(admin.EraseSubjectWithResponse(ctx, apiclient.SubjectRequest{Number: ref("3001")}))

	// What was made goes.
	admin = newAdmin()
	answers(t, 204, "delete webhook")(admin.DeleteWebhookWithResponse(ctx, h))
	answers(t, 404, "delete no webhook")(admin.DeleteWebhookWithResponse(ctx, h))
	answers(t, 204, "delete queue")(admin.DeleteQueueWithResponse(ctx, q))
	answers(t, 404, "delete no queue")(admin.DeleteQueueWithResponse(ctx, q))
	answers(t, 204, "delete route")(admin.DeleteRouteWithResponse(ctx, tr))
	answers(t, 404, "delete no route")(admin.DeleteRouteWithResponse(ctx, nobody))
	answers(t, 204, "delete trunk")(admin.DeleteTrunkWithResponse(ctx, tr))
	answers(t, 404, "delete no trunk")(admin.DeleteTrunkWithResponse(ctx, tr))

	// Every operation answered a success, and an error where it declares one.
	exempt := map[string]string{
		"operatorSocket": "its 101 is a WebSocket, which opclient opens in every call test",
	}
	seen := spec.Seen()
	for _, op := range spec.Operations() {
		codes := seen[op.ID]
		if !slices.ContainsFunc(codes, func(c int) bool { return c < 300 }) && exempt[op.ID] == "" {
			t.Errorf("%s (%s %s) never answered a success here: %v", op.ID, op.Method, op.Path, codes)
		}
		if declaresError(spec, op) && !slices.ContainsFunc(codes, func(c int) bool { return c >= 400 && c < 500 }) {
			t.Errorf("%s (%s %s) never answered an error here: %v", op.ID, op.Method, op.Path, codes)
		}
	}
}

// declaresError reports whether an operation declares a 4xx answer.
func declaresError(spec *apispec.Spec, op apispec.Operation) bool {
	for code := range spec.Doc().Paths.Find(op.Path).GetOperation(op.Method).Responses.Map() {
		if strings.HasPrefix(code, "4") {
			return true
		}
	}
	return false
}

// ref is a pointer to v, for the client's optional fields.
func ref[T any](v T) *T { return &v }
