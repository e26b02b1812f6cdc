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

func (t TransferTarget) detail(from ID) map[string]any {
	d := map[string]any{"from_operator_id": from}
	switch {
	case t.OperatorID != nil:
		d["to_operator_id"] = *t.OperatorID
	case t.QueueID != nil:
		d["to_queue_id"] = *t.QueueID
	default:
		d["to_uri"] = t.URI
	}
	return d
}

// TransferCall hands the operator's answered call to t. Returns ENOTFOUND
// if the operator is not on that call or the operator named is not
// connected in the tenant, EINVALID for a bad target.
func (s *Switch) TransferCall(opID, callID ID, t TransferTarget) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.OperatorID != nil {
		return s.Transfer(opID, callID, *t.OperatorID)
	}
	if t.URI != "" && s.dialer == nil {
		return Errorf(EUNAVAILABLE, "calls cannot be placed here")
	}
	return s.toCall(opID, callID, agentBusy, opMsg{kind: opTransfer, opID: opID, transfer: &t})
}

// TransferByAPI is TransferCall for an integration: the call is the
// tenant's, answered by an operator. Returns ECONFLICT if it is not
// answered by one.
func (s *Switch) TransferByAPI(tenantID, callID ID, t TransferTarget) error {
	s.mu.Lock()
	var opID *ID
	for id, a := range s.agents {
		if a.callID == callID && a.state == agentBusy && a.conn.TenantID() == tenantID {
			opID = &id
			break
		}
	}
	s.mu.Unlock()
	if opID == nil {
		return Errorf(ECONFLICT, "the call is not in progress with an operator")
	}
	return s.TransferCall(*opID, callID, t)
}
