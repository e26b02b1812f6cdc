package api

import (
	"context"
	"slices"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// The operator page's desk, over the operator socket: who calls, the
// calls that reached the operator, whom they can hand a call to, and
// where the recording of their call stands.

const (
	rememberCalls = 8               // calls a socket remembers having been offered
	earlierCalls  = 5               // a caller's earlier calls shown
	recentCalls   = 20              // the operator's recent calls shown
	deskTimeout   = 5 * time.Second // one read of the desk
	callBackScan  = 100             // how far back "call back" looks for the call
)

// Server → client messages of the desk.
type (
	msgRecording struct {
		Type   string `json:"type"` // recording
		CallID sb.ID  `json:"call_id"`
		sb.RecordingView
	}
	msgCaller struct {
		Type   string         `json:"type"` // caller
		Caller *sb.CallerInfo `json:"caller"`
	}
	msgRecent struct {
		Type  string          `json:"type"` // recent
		Calls []sb.RecentCall `json:"calls"`
	}
	msgDirectory struct {
		Type      string          `json:"type"` // directory
		Operators []sb.Colleague  `json:"operators"`
		Queues    []sb.QueueEntry `json:"queues"`
	}
)

// remember notes a call offered to (or placed by) this socket: its caller
// may be shown.
func (c *opConn) remember(id sb.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.Contains(c.offered, id) {
		return
	}
	c.offered = append(c.offered, id)
	if len(c.offered) > rememberCalls {
		c.offered = slices.Delete(c.offered, 0, len(c.offered)-rememberCalls)
	}
}

func (c *opConn) wasOffered(id sb.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.offered, id)
}

// actorContext is ctx with the socket's person as the actor, for reads
// the store authorizes.
func (c *opConn) actorContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, deskTimeout)
	return sb.NewContextWithActor(ctx, &sb.Actor{TenantID: c.user.TenantID, UserID: c.user.ID, Role: c.user.Role}), cancel
}

// canDial reports whether the tenant has an outbound route.
func (c *opConn) canDial(ctx context.Context) bool {
	if c.s.deps.Routes == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, deskTimeout)
	defer cancel()
	routes, err := c.s.deps.Routes.OutboundRoutes(ctx, c.user.TenantID)
	if err != nil {
		c.log.Warn("reading the tenant's outbound routes", "err", err)
		return false
	}
	return len(routes) > 0
}

// request does one client request: the desk's reads here, the rest in
// handle.
func (c *opConn) request(ctx context.Context, m clientMessage) error {
	switch m.Type {
	case "caller":
		return c.showCaller(ctx, m.CallID)
	case "recent":
		return c.showRecent(ctx)
	case "directory":
		return c.showDirectory(ctx)
	case "dial":
		if m.CallID != "" {
			return c.callBack(ctx, m.CallID)
		}
	}
	return c.handle(ctx, m)
}

func (c *opConn) desk() (sb.Desk, error) {
	if c.s.deps.Desk == nil {
		return nil, sb.Errorf(sb.EUNAVAILABLE, "the desk is not available here")
	}
	return c.s.deps.Desk, nil
}

// showCaller describes a call offered to this socket.
func (c *opConn) showCaller(ctx context.Context, raw string) error {
	id, err := sb.ParseID(raw)
	if err != nil || !c.wasOffered(id) {
		return sb.Errorf(sb.ENOTFOUND, "no such call offered to you")
	}
	d, err := c.desk()
	if err != nil {
		return err
	}
	actx, cancel := c.actorContext(ctx)
	defer cancel()
	info, err := d.Caller(actx, id, earlierCalls)
	if err != nil {
		return err
	}
	if c.maskNumbers {
		maskCaller(info)
	}
	return c.enqueue(msgCaller{Type: "caller", Caller: info})
}

// showRecent lists the calls that reached the operator.
func (c *opConn) showRecent(ctx context.Context) error {
	d, err := c.desk()
	if err != nil {
		return err
	}
	actx, cancel := c.actorContext(ctx)
	defer cancel()
	calls, err := d.Recent(actx, recentCalls)
	if err != nil {
		return err
	}
	if calls == nil {
		calls = []sb.RecentCall{}
	}
	if c.maskNumbers {
		for i := range calls {
			calls[i].Number = sb.MaskNumber(calls[i].Number)
		}
	}
	return c.enqueue(msgRecent{Type: "recent", Calls: calls})
}

// showDirectory lists the tenant's operators, with their state, and its
// queues, with who waits in them: whom a call can be handed to.
func (c *opConn) showDirectory(ctx context.Context) error {
	d, err := c.desk()
	if err != nil {
		return err
	}
	actx, cancel := c.actorContext(ctx)
	defer cancel()
	ops, queues, err := d.Colleagues(actx)
	if err != nil {
		return err
	}
	states := c.s.deps.CallControl.Presence(c.user.TenantID)
	others := make([]sb.Colleague, 0, len(ops))
	for _, o := range ops {
		if o.ID == c.user.ID {
			continue
		}
		o.State = "offline"
		if st, ok := states[o.ID]; ok {
			o.State = st
		}
		others = append(others, o)
	}
	var waiting map[sb.ID]int
	if c.s.deps.Queues != nil && c.s.deps.Queues.Waiting != nil {
		waiting = c.s.deps.Queues.Waiting(c.user.TenantID)
	}
	for i := range queues {
		queues[i].Waiting = waiting[queues[i].ID]
	}
	if queues == nil {
		queues = []sb.QueueEntry{}
	}
	return c.enqueue(msgDirectory{Type: "directory", Operators: others, Queues: queues})
}

// listedQueue returns ENOTFOUND unless id is one of the queues the
// directory lists. Call control takes a transfer's queue as given, and one
// it cannot read in the call's tenant leaves the call to any operator.
func (c *opConn) listedQueue(ctx context.Context, id sb.ID) error {
	d, err := c.desk()
	if err != nil {
		return err
	}
	actx, cancel := c.actorContext(ctx)
	defer cancel()
	_, queues, err := d.Colleagues(actx)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(queues, func(q sb.QueueEntry) bool { return q.ID == id }) {
		return sb.Errorf(sb.ENOTFOUND, "queue not found")
	}
	return nil
}

// callBack dials the other party of one of the operator's recent calls:
// the page may only know the number masked.
func (c *opConn) callBack(ctx context.Context, raw string) error {
	id, err := sb.ParseID(raw)
	if err != nil {
		return sb.Errorf(sb.EINVALID, "call_id %q is not a call id", truncate(raw, 64))
	}
	d, err := c.desk()
	if err != nil {
		return err
	}
	actx, cancel := c.actorContext(ctx)
	calls, err := d.Recent(actx, callBackScan)
	cancel()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(calls, func(rc sb.RecentCall) bool { return rc.CallID == id })
	switch {
	case i < 0:
		return sb.Errorf(sb.ENOTFOUND, "no such call among your recent calls")
	case calls[i].Channel == "web" || calls[i].Number == "":
		return sb.Errorf(sb.EINVALID, "a web visitor cannot be called back")
	case calls[i].Channel == sb.ChannelWhatsApp:
		return c.handle(ctx, clientMessage{Type: "dial", Number: sb.ChannelWhatsApp + ":" + calls[i].Number})
	}
	return c.handle(ctx, clientMessage{Type: "dial", Number: calls[i].Number})
}
