package switchboard

import (
	"context"
	"net/netip"
)

// What a tenant's admins change and remove of what they created: trunks,
// their outbound routes and queues. A nil field of a change is left as it
// is.

// TrunkChange is an admin's change to a trunk.
type TrunkChange struct {
	Name             *string         `json:"name,omitempty"`
	Allow            *[]netip.Prefix `json:"allow,omitempty"`
	Numbers          *[]string       `json:"numbers,omitempty"`
	RecordingConsent *bool           `json:"recording_consent,omitempty"`
	// Username and Password set digest credentials together; both empty
	// take them away (the trunk must still have allowed addresses).
	Username *string `json:"username,omitempty"`
	Password *string `json:"password,omitempty"`
}

// Route is a trunk's outbound route as its admins see it: the password is
// never shown, only whether there is one.
type Route struct {
	TrunkID     ID     `json:"trunk_id"`
	TrunkName   string `json:"trunk_name"`
	Target      string `json:"target"`
	Transport   string `json:"transport"`
	Media       string `json:"media"` // MediaRTP or MediaDTLS
	Username    string `json:"username,omitempty"`
	HasPassword bool   `json:"has_password"`
	CallerID    string `json:"caller_id,omitempty"`
	Priority    int    `json:"priority"`
	Register    bool   `json:"register"`
}

// RouteChange is an admin's change to a trunk's outbound route; setting a
// route on a trunk that has none needs Target.
type RouteChange struct {
	Target    *string `json:"target,omitempty"`
	Transport *string `json:"transport,omitempty"`
	Media     *string `json:"media,omitempty"`
	Username  *string `json:"username,omitempty"`
	Password  *string `json:"password,omitempty"`
	CallerID  *string `json:"caller_id,omitempty"`
	Priority  *int    `json:"priority,omitempty"`
	Register  *bool   `json:"register,omitempty"`
}

// QueueChange is an admin's change to a queue.
type QueueChange struct {
	Name           *string   `json:"name,omitempty"`
	MaxWaitSeconds *float64  `json:"max_wait_seconds,omitempty"`
	Members        *[]ID     `json:"members,omitempty"`
	Overflow       *Overflow `json:"overflow,omitempty"`
	Numbers        *[]string `json:"numbers,omitempty"`
}

// TrunkAdmin is what a tenant's admins do with its trunks and their
// outbound routes, beyond creating and listing them. A trunk with a call
// in progress is not deleted (ECONFLICT): the call's record would name a
// trunk that no longer is; once deleted, its calls' records keep its name.
type TrunkAdmin interface {
	CreateTrunk(ctx context.Context, t *Trunk, password string) error
	TrunkByID(ctx context.Context, id ID) (*Trunk, error)
	UpdateTrunk(ctx context.Context, id ID, ch TrunkChange) (*Trunk, error)
	DeleteTrunk(ctx context.Context, id ID) (*Trunk, error)
	Routes(ctx context.Context) ([]Route, error)
	SetRoute(ctx context.Context, trunkID ID, ch RouteChange) (*Route, error)
	DeleteRoute(ctx context.Context, trunkID ID) error
	// Numbers lists the tenant's numbers: the trunk each comes in on and
	// the queue, if any, it leads to.
	Numbers(ctx context.Context) ([]Number, error)
}

// Number is one of a tenant's numbers and where its calls go. Numbers are
// a trunk's (changed with the trunk) and lead to a queue (changed with the
// queue) or, with none, to all of the tenant's operators.
type Number struct {
	Number    string `json:"number"`
	TrunkID   ID     `json:"trunk_id"`
	TrunkName string `json:"trunk_name"`
	QueueID   *ID    `json:"queue_id,omitempty"`
	QueueName string `json:"queue_name,omitempty"`
}

// QueueAdmin is what a tenant's admins do with its queues. A queue with a
// call in progress (waiting in it, or dialled to one of its numbers, and
// not ended) is not deleted (ECONFLICT); once it is, its numbers lead to
// all of the tenant's operators.
type QueueAdmin interface {
	CreateQueue(ctx context.Context, q *Queue) error
	QueueByID(ctx context.Context, id ID) (*Queue, error)
	UpdateQueue(ctx context.Context, id ID, ch QueueChange) (*Queue, error)
	DeleteQueue(ctx context.Context, id ID) (*Queue, error)
}
