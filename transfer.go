package switchboard

// TransferTarget is where an answered call is handed on (blind transfer):
// one operator, a queue, or a SIP URI. Exactly one is set.
type TransferTarget struct {
	OperatorID *ID    `json:"operator_id,omitempty"`
	QueueID    *ID    `json:"queue_id,omitempty"`
	URI        string `json:"uri,omitempty"` // sip:user@host[:port][;transport=tcp]
}

// Validate checks that the target names one place.
func (t TransferTarget) Validate() error {
	n := 0
	if t.OperatorID != nil {
		n++
	}
	if t.QueueID != nil {
		n++
	}
	if t.URI != "" {
		n++
		if _, _, err := ParseSIPURI(t.URI); err != nil {
			return err
		}
	}
	if n != 1 {
		return Errorf(EINVALID, "a transfer names one of operator_id, queue_id or uri")
	}
	return nil
}
