package switchboard

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Queues (departments): a tenant's number may lead to a queue, whose
// operators alone take its calls. A caller finds nobody free waits,
// hearing ringback, up to the queue's longest wait; the longest waiting
// caller gets the next operator who is free. Then the call overflows: to
// another queue, to a SIP URI (a call switchboard places and bridges), or
// to a clear refusal.

// Overflow kinds: what happens to a caller who waited the queue's longest.
const (
	OverflowReject = "reject"
	OverflowQueue  = "queue"
	OverflowURI    = "uri"
)

// MaxQueueWait bounds how long a queue may keep a caller waiting.
const MaxQueueWait = time.Hour

// Queue is a department of a tenant's operators.
type Queue struct {
	ID       ID     `json:"id"`
	TenantID ID     `json:"tenant_id"`
	Name     string `json:"name"`
	// MaxWait is how long a caller waits for a free operator; 0 refuses
	// (or overflows) at once when nobody is free.
	MaxWait time.Duration `json:"-"`
	// Members are the operators (user IDs) who take the queue's calls;
	// none means all of the tenant's.
	Members  []ID     `json:"members"`
	Overflow Overflow `json:"overflow"`
	// Numbers are the tenant's numbers that lead to the queue.
	Numbers   []string  `json:"numbers"`
	CreatedAt time.Time `json:"created_at"`
}

// Overflow is where a queue sends the caller who waited its longest.
type Overflow struct {
	Kind    string `json:"kind"`               // reject, queue or uri
	QueueID *ID    `json:"queue_id,omitempty"` // for queue
	URI     string `json:"uri,omitempty"`      // for uri: sip:user@host[:port][;transport=tcp]
}

// Takes reports whether the operator answers the queue's calls.
func (q *Queue) Takes(opID ID) bool {
	return q == nil || len(q.Members) == 0 || slices.Contains(q.Members, opID)
}

// Validate checks a queue's settings.
func (q *Queue) Validate() error {
	switch {
	case q.Name == "" || len(q.Name) > 100:
		return Errorf(EINVALID, "a queue's name is 1 to 100 characters")
	case q.MaxWait < 0 || q.MaxWait > MaxQueueWait:
		return Errorf(EINVALID, "a queue's longest wait is from 0 to %s", MaxQueueWait)
	}
	switch q.Overflow.Kind {
	case OverflowReject:
	case OverflowQueue:
		if q.Overflow.QueueID == nil || *q.Overflow.QueueID == q.ID {
			return Errorf(EINVALID, "overflow to a queue names another queue")
		}
	case OverflowURI:
		if _, _, err := ParseSIPURI(q.Overflow.URI); err != nil {
			return err
		}
	default:
		return Errorf(EINVALID, "overflow is reject, queue or uri, not %q", q.Overflow.Kind)
	}
	return nil
}

// QueueDirectory finds a tenant's queues for call control.
type QueueDirectory interface {
	// QueueForNumber returns the queue the tenant's number leads to, or
	// nil when it leads to all of the tenant's operators.
	QueueForNumber(ctx context.Context, tenantID ID, number string) (*Queue, error)
	// QueueByID returns one of the tenant's queues, or ENOTFOUND.
	QueueByID(ctx context.Context, tenantID, id ID) (*Queue, error)
}

// ParseSIPURI reads sip:user@host[:port][;transport=udp|tcp] into a route
// without credentials and the user part to call.
func ParseSIPURI(uri string) (OutboundRoute, string, error) {
	bad := func(why string) (OutboundRoute, string, error) {
		return OutboundRoute{}, "", Errorf(EINVALID, "%q is not a SIP URI we can call (%s): sip:user@host[:port][;transport=tcp]", uri, why)
	}
	rest, ok := strings.CutPrefix(uri, "sip:")
	if !ok || len(uri) > 200 {
		return bad("it starts with sip: and is at most 200 characters")
	}
	rest, params, _ := strings.Cut(rest, ";")
	user, hostport, ok := strings.Cut(rest, "@")
	if !ok || user == "" || strings.ContainsAny(user, " <>\"") {
		return bad("it names a user")
	}
	r := OutboundRoute{Transport: "udp"}
	for _, p := range strings.Split(params, ";") {
		switch p {
		case "", "transport=udp":
		case "transport=tcp":
			r.Transport = "tcp"
		default:
			return bad("unknown parameter " + p)
		}
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), "5060"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" || strings.ContainsAny(host, " /@[]") ||
		(strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return bad("its host and port")
	}
	r.Target = net.JoinHostPort(host, port)
	return r, user, nil
}
