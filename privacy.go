package switchboard

import (
	"context"
	"encoding/json"
	"time"
)

// A person's data on request (data-subject requests): everything a tenant
// holds about one caller, found by their phone number or by the reference
// an integration attached to their calls (a messenger user ID, a chat),
// exported, erased, or corrected. Each request is an admin's, with a
// reason, and audited; the audit entry names the request, never the
// person.

// Subject names the person a request is about: exactly one of the two.
type Subject struct {
	Number      string `json:"number,omitempty"`       // as on the call records, e.g. +15550001111
	ExternalRef string `json:"external_ref,omitempty"` // a messenger user ID, chat or CRM reference
}

// Validate checks that the subject names one person.
func (s Subject) Validate() error {
	if (s.Number == "") == (s.ExternalRef == "") || len(s.Number) > 32 || len(s.ExternalRef) > 200 {
		return Errorf(EINVALID, "a request names the person by number or by external_ref, one of the two")
	}
	return nil
}

// SubjectExport is everything held about a person, machine-readable.
type SubjectExport struct {
	Subject    Subject      `json:"subject"`
	TenantID   ID           `json:"tenant_id"`
	ExportedAt time.Time    `json:"exported_at"`
	Calls      []*Call      `json:"calls"`
	Events     []*CallEvent `json:"events"` // the calls' timelines, consent statements among them
	// Recordings lists the calls' recordings; their audio is heard or
	// downloaded through a grant, which is audited like any other.
	Recordings []*Recording `json:"recordings"`
	// The rest of what erasure deletes, each row as stored: the calls'
	// SIP traces (whole messages), quality samples, the webhook payloads
	// that carried their records, and browser callers' tokens (name and
	// reference; never the token's hash).
	SIPMessages         []json.RawMessage `json:"sip_messages"`
	QualitySamples      []json.RawMessage `json:"quality_samples"`
	WebhookDeliveries   []json.RawMessage `json:"webhook_deliveries"`
	BrowserCallerTokens []json.RawMessage `json:"browser_caller_tokens"`
}

// ErasureReceipt says what an erasure removed.
type ErasureReceipt struct {
	ID                  ID        `json:"id"`
	TenantID            ID        `json:"tenant_id"`
	ErasedAt            time.Time `json:"erased_at"`
	Calls               int       `json:"calls"`                 // records anonymised: numbers, references, labels and sources gone
	Events              int64     `json:"events"`                // timeline entries deleted
	SIPMessages         int64     `json:"sip_messages"`          // trace messages deleted
	QualitySamples      int64     `json:"quality_samples"`       // deleted
	Recordings          int       `json:"recordings"`            // objects deleted and keys shredded
	WebhookDeliveries   int64     `json:"webhook_deliveries"`    // stored payloads deleted
	BrowserCallerTokens int64     `json:"browser_caller_tokens"` // deleted
}

// SubjectService answers data-subject requests for the actor's tenant
// (admins only). reason says why, for the audit log.
type SubjectService interface {
	ExportSubject(ctx context.Context, s Subject, reason string) (*SubjectExport, error)
	// EraseSubject anonymises the person's ended calls and deletes what
	// else is held about them. A call in progress is ECONFLICT.
	EraseSubject(ctx context.Context, s Subject, reason string) (*ErasureReceipt, error)
	// RectifyNumber corrects a number wherever erasure would reach it (the
	// call records, their timelines, SIP traces, webhook payloads and
	// browser callers' tokens) and returns how many call records changed.
	RectifyNumber(ctx context.Context, wrong, right, reason string) (int64, error)
}
