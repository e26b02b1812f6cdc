package switchboard

import (
	"context"
	"time"
)

// Namer names what the actor's tenant holds by ID, for pages that show
// people, keys, trunks and queues by name: a person by their name (their
// email if they gave none), an API key by its label, a trunk or queue by
// its name. An ID it does not know (another tenant's, a key revoked
// since) is left out of the answer.
type Namer interface {
	Names(ctx context.Context, ids []ID) (map[ID]string, error)
}

// OperatorPresence is where one connected operator stands on this
// instance.
type OperatorPresence struct {
	OperatorID ID     `json:"operator_id"`
	State      string `json:"state"` // available, ringing, busy, away
	// Since is when they last became free (available) or took up their
	// current call; zero when unknown.
	Since  time.Time `json:"since"`
	CallID *ID       `json:"call_id,omitempty"`
	// Reconnecting: their page dropped during the call, which waits for it.
	Reconnecting bool `json:"reconnecting,omitempty"`
}

// QueueWaiter is a caller waiting in line for a queue's operator.
type QueueWaiter struct {
	CallID  ID        `json:"call_id"`
	QueueID ID        `json:"queue_id"`
	Since   time.Time `json:"since"`
}

// Floor is what a tenant's supervisors watch live: the operators
// connected and the callers waiting in line, on this instance.
type Floor struct {
	Operators []OperatorPresence `json:"operators"`
	Waiting   []QueueWaiter      `json:"waiting"`
}
