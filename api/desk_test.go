package api

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

// fakeDesk answers recent calls and queues as given, and records who
// asked.
type fakeDesk struct {
	recent []sb.RecentCall
	queues []sb.QueueEntry
	mu     sync.Mutex
	actors []*sb.Actor
}

func (d *fakeDesk) Caller(ctx context.Context, id sb.ID, _ int) (*sb.CallerInfo, error) {
	d.note(ctx)
	return &sb.CallerInfo{CallID: id, From: "+15550001234", To: "+15550009876", Channel: "phone", Labels: []string{}, Earlier: []sb.EarlierCall{}}, nil
}
func (d *fakeDesk) Recent(ctx context.Context, _ int) ([]sb.RecentCall, error) {
	d.note(ctx)
	return d.recent, nil
}
func (d *fakeDesk) Colleagues(ctx context.Context) ([]sb.Colleague, []sb.QueueEntry, error) {
	d.note(ctx)
	return nil, d.queues, nil
}
func (d *fakeDesk) note(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.actors = append(d.actors, sb.ActorFromContext(ctx))
}

// dialRecorder is call control that records the numbers dialled.
type dialRecorder struct {
	fakeControl
	mu      sync.Mutex
	dialled []string
}

func (d *dialRecorder) Dial(_ sb.ID, number string) (sb.ID, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dialled = append(d.dialled, number)
	return sb.NewID(), nil
}

// transferRecorder is call control that records the transfers asked.
type transferRecorder struct {
	fakeControl
	mu        sync.Mutex
	transfers []sb.TransferTarget
}

func (r *transferRecorder) TransferCall(_, _ sb.ID, t sb.TransferTarget) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.transfers = append(r.transfers, t)
	return nil
}

// The desk's requests: calling back dials the recent call's number,
// which the page may only know masked, and refuses a web visitor and a
// call not among the operator's; a caller is described only for a call
// offered to the socket, masked as the tenant says, read as the operator.
func TestOperatorDeskRequests(t *testing.T) {
	phone, web := sb.NewID(), sb.NewID()
	desk := &fakeDesk{recent: []sb.RecentCall{
		{CallID: phone, Number: "+15550001234", Channel: "phone", Outcome: "missed"},
		{CallID: web, Number: "web:visitor-1", Channel: "web", Outcome: "answered"},
	}}
	control := &dialRecorder{}
	s := NewServer(Config{}, Deps{CallControl: control, Desk: desk})
	user := &sb.User{ID: sb.NewID(), TenantID: sb.NewID(), Role: sb.RoleOperator}
	c := &opConn{s: s, user: user, maskNumbers: true, quit: make(chan struct{}), send: make(chan []byte, 8)}
	ctx := context.Background()

	if err := c.request(ctx, clientMessage{Type: "dial", CallID: phone.String()}); err != nil {
		t.Fatalf("call back: %v", err)
	}
	if len(control.dialled) != 1 || control.dialled[0] != "+15550001234" {
		t.Errorf("dialled %q, want the recent call's whole number", control.dialled)
	}
	if err := c.request(ctx, clientMessage{Type: "dial", CallID: web.String()}); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("calling back a web visitor: %v, want invalid", err)
	}
	if err := c.request(ctx, clientMessage{Type: "dial", CallID: sb.NewID().String()}); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("calling back a call not among the recent: %v, want not found", err)
	}
	if len(control.dialled) != 1 {
		t.Errorf("dialled %q, want only the phone call's number", control.dialled)
	}

	offered := sb.NewID()
	if err := c.request(ctx, clientMessage{Type: "caller", CallID: offered.String()}); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("a call never offered described: %v, want not found", err)
	}
	c.remember(offered)
	for len(c.send) > 0 {
		<-c.send // the dialling confirmations
	}
	if err := c.request(ctx, clientMessage{Type: "caller", CallID: offered.String()}); err != nil {
		t.Fatal(err)
	}
	var got msgCaller
	if err := json.Unmarshal(<-c.send, &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "caller" || got.Caller.From != sb.MaskNumber("+15550001234") || got.Caller.To != sb.MaskNumber("+15550009876") {
		t.Errorf("caller %+v, want the numbers masked", got.Caller)
	}
	for _, a := range desk.actors {
		if a == nil || a.UserID != user.ID || a.TenantID != user.TenantID || a.Role != sb.RoleOperator {
			t.Errorf("the desk was read as %+v, want the operator", a)
		}
	}
}

// A transfer from the socket to a queue names one the directory lists:
// call control would take another tenant's, not find it, and hand the
// call to any operator.
func TestSocketTransferToListedQueue(t *testing.T) {
	billing := sb.NewID()
	desk := &fakeDesk{queues: []sb.QueueEntry{{ID: billing, Name: "billing"}}}
	control := &transferRecorder{}
	s := NewServer(Config{}, Deps{CallControl: control, Desk: desk})
	user := &sb.User{ID: sb.NewID(), TenantID: sb.NewID(), Role: sb.RoleOperator}
	c := &opConn{s: s, user: user, quit: make(chan struct{}), send: make(chan []byte, 8)}
	call := sb.NewID().String()

	err := c.request(t.Context(), clientMessage{Type: "transfer", CallID: call, ToQueue: sb.NewID().String()})
	if sb.ErrorCode(err) != sb.ENOTFOUND || sb.ErrorMessage(err) != "queue not found" {
		t.Errorf("a transfer to a queue not listed: %v, want queue not found", err)
	}
	if len(control.transfers) != 0 {
		t.Fatalf("call control was asked %+v", control.transfers)
	}
	if err := c.request(t.Context(), clientMessage{Type: "transfer", CallID: call, ToQueue: billing.String()}); err != nil {
		t.Fatalf("a transfer to the tenant's queue: %v", err)
	}
	if len(control.transfers) != 1 || control.transfers[0].QueueID == nil || *control.transfers[0].QueueID != billing {
		t.Errorf("call control was asked %+v, want the transfer to billing", control.transfers)
	}
	for _, a := range desk.actors {
		if a == nil || a.UserID != user.ID || a.TenantID != user.TenantID {
			t.Errorf("the queues were read as %+v, want the operator", a)
		}
	}
}
