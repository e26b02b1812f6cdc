package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

// Live calls are known by connection and call ID: a tenant whose Graph
// API URL returned another tenant's call ID (or who guessed one) neither
// blocks that tenant's call with it nor is found for its webhooks; and a
// leg refused because its ID was live drops nothing when it closes.
func TestLiveCallsKeyedByConnection(t *testing.T) {
	s := New(nil, nil, nil, nil)
	const id = "wacid.HBgLMTIxODU1NTI4MjgVAgARGCAy0001"
	a, b := sb.NewID(), sb.NewID()
	squatter := &call{leg: &userLeg{svc: s, conn: a, id: id}, outbound: true}
	real := &call{leg: &userLeg{svc: s, conn: b, id: id}}
	if !s.keep(squatter) {
		t.Fatal("the first call not kept")
	}
	if !s.keep(real) {
		t.Fatal("a call on another connection with the same ID was refused as a replay")
	}
	if s.find(a, id) != squatter || s.find(b, id) != real {
		t.Error("each connection does not find its own call")
	}
	again := &call{leg: &userLeg{svc: s, conn: b, id: id}}
	if s.keep(again) {
		t.Error("the same ID on the same connection kept twice")
	}
	s.forget(again.leg)
	if s.find(b, id) != real {
		t.Error("forgetting a leg never kept dropped the live call with its ID")
	}
	s.forget(real.leg)
	if s.find(b, id) != nil || s.find(a, id) != squatter {
		t.Error("forgetting a call dropped another's or kept its own")
	}
}

// quietPeer is a user's peer whose media may fail to connect.
type quietPeer struct {
	sb.TrunkLeg // what the tests do not use
	mediaErr    error
}

func (p *quietPeer) Answer(context.Context) error              { return p.mediaErr }
func (p *quietPeer) Reject(context.Context, int, string) error { return nil }
func (p *quietPeer) Hangup(context.Context, string) error      { return nil }
func (p *quietPeer) Close() error                              { return nil }
func (p *quietPeer) Leave()                                    {}
func (p *quietPeer) Emit(sb.LegEvent)                          {}

// However call control ends a leg, WhatsApp hears the end once: a leg
// closed before anything told WhatsApp sends terminate for a call accepted
// or placed, reject for a user's call never accepted (terminate if an
// accept went out and WhatsApp refuses the reject), and nothing after
// WhatsApp's own end, our reject or our terminate.
func TestClosedLegTellsWhatsApp(t *testing.T) {
	var mu sync.Mutex
	var got []string
	refuse := map[string]bool{}
	graphSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in callAction
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			t.Errorf("graph request: %v", err)
		}
		mu.Lock()
		got = append(got, in.Action)
		refused := refuse[in.Action]
		mu.Unlock()
		if refused {
			http.Error(w, `{"error":{"code":138000,"message":"no"}}`, http.StatusBadRequest)
			return
		}
		io.WriteString(w, `{"success":true}`)
	}))
	t.Cleanup(graphSrv.Close)
	s := New(nil, nil, nil, nil)
	leg := func(outbound bool, mediaErr error) *userLeg {
		return &userLeg{Peer: &quietPeer{mediaErr: mediaErr}, svc: s, graph: &graph{http: graphSrv.Client(), base: graphSrv.URL, phoneID: "1", token: "t"},
			conn: sb.NewID(), id: "wacid.x", answer: "v=0\r\n", outbound: outbound}
	}
	ctx := context.Background()
	noMedia := errors.New("the media did not connect")
	for _, c := range []struct {
		name   string
		refuse []string
		steps  func(l *userLeg)
		want   string
	}{
		{"accepted, the media never connected", nil, func(l *userLeg) { l.Answer(ctx) }, "accept terminate"},
		{"the accept refused", []string{"accept"}, func(l *userLeg) { l.Answer(ctx) }, "accept reject"},
		{"the accept and the reject refused", []string{"accept", "reject"}, func(l *userLeg) { l.Answer(ctx) }, "accept reject terminate"},
		{"never answered", nil, func(*userLeg) {}, "reject"},
		{"rejected", nil, func(l *userLeg) { l.Reject(ctx, 480, "nobody") }, "reject"},
		{"hung up before the answer", nil, func(l *userLeg) { l.Hangup(ctx, "shutting down") }, "reject"},
		{"the user hung up", nil, func(l *userLeg) { l.userTerminated(false, "bye") }, ""},
	} {
		mu.Lock()
		got, refuse = nil, map[string]bool{}
		for _, a := range c.refuse {
			refuse[a] = true
		}
		mu.Unlock()
		l := leg(false, noMedia)
		c.steps(l)
		l.Close()
		l.Close()
		mu.Lock()
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("%s: WhatsApp was sent %q, want %q", c.name, g, c.want)
		}
		mu.Unlock()
	}
	mu.Lock()
	got, refuse = nil, map[string]bool{}
	mu.Unlock()
	placed := leg(true, nil)
	placed.Close()
	mu.Lock()
	defer mu.Unlock()
	if g := strings.Join(got, " "); g != "terminate" {
		t.Errorf("a placed call closed: WhatsApp was sent %q, want terminate", g)
	}
}

// A permission request asks for the tenant's budget only once it would be
// sent: after the sender's role, the number, the text and the tenant's
// connection are checked. The budget's refusal is returned as it is.
func TestPermissionBudgetAskedLast(t *testing.T) {
	var dispatched atomic.Int64
	s, _ := newTestService(t, &dispatched)
	tenant := s.dir.(oneConnection).conn.TenantID
	spent := errors.New("spent")
	as := func(tenantID sb.ID, role sb.Role) context.Context {
		return sb.NewContextWithActor(t.Context(), &sb.Actor{TenantID: tenantID, UserID: sb.NewID(), Role: role})
	}
	for _, c := range []struct {
		name     string
		ctx      context.Context
		to, text string
		refuse   bool
		code     string
		asked    int
	}{
		{"support", as(tenant, sb.RoleSupport), "+4915112345678", "May we call?", false, sb.EFORBIDDEN, 0},
		{"not a number", as(tenant, sb.RoleOperator), "call me", "May we call?", false, sb.EINVALID, 0},
		{"no text", as(tenant, sb.RoleOperator), "+4915112345678", "", false, sb.EINVALID, 0},
		{"no connection", as(sb.NewID(), sb.RoleOperator), "+4915112345678", "May we call?", false, sb.ENOTFOUND, 0},
		// The test's Graph API refuses what is sent.
		{"sent", as(tenant, sb.RoleOperator), "+4915112345678", "May we call?", false, sb.EUNAVAILABLE, 1},
		{"over budget", as(tenant, sb.RoleOperator), "+4915112345678", "May we call?", true, "", 1},
	} {
		asked := 0
		err := s.RequestPermission(c.ctx, c.to, c.text, func() error {
			asked++
			if c.refuse {
				return spent
			}
			return nil
		})
		switch {
		case c.refuse && !errors.Is(err, spent):
			t.Errorf("%s: %v, want the budget's error", c.name, err)
		case !c.refuse && sb.ErrorCode(err) != c.code:
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
		if asked != c.asked {
			t.Errorf("%s: the budget asked %d times, want %d", c.name, asked, c.asked)
		}
	}
}
