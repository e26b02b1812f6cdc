package switchboard

import (
	"context"
	"strings"
	"time"
)

// What an operator's page shows around their calls: who calls, the calls
// that reached them, and whom they can hand a call to.

// CallerInfo is what an operator is shown about a call offered to them.
type CallerInfo struct {
	CallID    ID        `json:"call_id"`
	Direction Direction `json:"direction"`
	From      string    `json:"from"` // masked as the tenant's policy says
	To        string    `json:"to"`   // the number dialled
	// Channel is how the call came in: "phone" (a trunk), "whatsapp" or
	// "web" (a visitor's browser, through a widget's token).
	Channel string `json:"channel"`
	// Via names the trunk (or the widget's trunk) the call came through.
	Via         string   `json:"via"`
	ExternalRef string   `json:"external_ref,omitempty"`
	Labels      []string `json:"labels"`
	// Earlier are the tenant's earlier calls from (or to) the same number,
	// newest first; none for a web visitor, who has no number.
	Earlier []EarlierCall `json:"earlier"`
}

// EarlierCall is one earlier call of a caller.
type EarlierCall struct {
	CallID      ID         `json:"call_id"`
	At          time.Time  `json:"at"`
	Direction   Direction  `json:"direction"`
	Status      CallStatus `json:"status"`
	DurationMS  int64      `json:"duration_ms"`
	ExternalRef string     `json:"external_ref,omitempty"`
	Labels      []string   `json:"labels"`
}

// RecentCall is a call that reached an operator: offered to them, taken
// or placed by them.
type RecentCall struct {
	CallID     ID         `json:"call_id"`
	At         time.Time  `json:"at"`
	Direction  Direction  `json:"direction"`
	Number     string     `json:"number"` // the other party: the caller, or whom they called
	Channel    string     `json:"channel"`
	Status     CallStatus `json:"status"`
	DurationMS int64      `json:"duration_ms"`
	// Outcome is what the call was for this operator: "answered",
	// "missed" (it rang out), "declined", "canceled" (the caller gave up
	// while it rang), or the call's status for a call they placed.
	Outcome string `json:"outcome"`
}

// Colleague is an operator of the tenant as another sees them, to hand
// a call to.
type Colleague struct {
	ID   ID     `json:"id"`
	Name string `json:"name"`
	// State is "available", "ringing", "busy", "away", or "offline" (not
	// connected to this instance).
	State string `json:"state"`
}

// QueueEntry is a queue as an operator sees it, to hand a call to.
type QueueEntry struct {
	ID      ID     `json:"id"`
	Name    string `json:"name"`
	Waiting int    `json:"waiting"` // callers in line now, on this instance
}

// Desk is what an operator's page reads about their calls; the actor
// taken from the context is the operator, and every read is limited to
// their tenant.
type Desk interface {
	// Caller describes a call of the actor's tenant and its caller's
	// earlier calls (up to limit). The caller of Desk must have made sure
	// the call was offered to the actor. Returns ENOTFOUND if there is no
	// such call in the tenant.
	Caller(ctx context.Context, callID ID, limit int) (*CallerInfo, error)
	// Recent lists the calls that reached the actor, newest first.
	Recent(ctx context.Context, limit int) ([]RecentCall, error)
	// Colleagues lists the tenant's people who take calls (enabled, role
	// operator, supervisor or admin), by name, with State left empty, and
	// its queues.
	Colleagues(ctx context.Context) ([]Colleague, []QueueEntry, error)
}

// CallChannel says how a call came in (or went out) from its record's
// channel and signalling source, as "channel:source": "whatsapp" for a
// messenger's call, "web" for a browser caller (WHIP), "phone" otherwise.
func CallChannel(channelSource string) string {
	channel, source, _ := strings.Cut(channelSource, ":")
	switch {
	case channel == ChannelWhatsApp:
		return ChannelWhatsApp
	case strings.HasPrefix(source, browserSource):
		return "web"
	}
	return "phone"
}

// browserSource begins the signalling source of a browser caller's call.
const browserSource = "webrtc:"

// BrowserSource is the signalling source of a browser caller's call: the
// visitor's address, as the API's trusted proxies tell it.
func BrowserSource(addr string) string { return browserSource + addr }

// MaskSource is a call's signalling source as a reader who sees numbers
// masked may see it. A browser caller's address names the visitor as a
// number names a caller, so it goes, whole (the last digits of an address
// still narrow down who and where); what stays says the call came from a
// browser. A trunk's or a messenger's source is the PBX's or the
// business's, not the caller's, and stays.
func MaskSource(source string) string {
	if !strings.HasPrefix(source, browserSource) {
		return source
	}
	return browserSource + "…"
}
