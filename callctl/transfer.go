package callctl

import sb "github.com/switchboard-voice/switchboard"

func transferDetail(t sb.TransferTarget, from sb.ID) map[string]any {
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
func (s *Switch) TransferCall(opID, callID sb.ID, t sb.TransferTarget) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.OperatorID != nil {
		return s.Transfer(opID, callID, *t.OperatorID)
	}
	if t.URI != "" && s.dialer == nil {
		return sb.Errorf(sb.EUNAVAILABLE, "calls cannot be placed here")
	}
	if t.URI != "" {
		// Said at once, to whoever asked; checked again when the call is
		// placed.
		s.mu.Lock()
		a := s.agents[opID]
		s.mu.Unlock()
		if a == nil {
			return sb.Errorf(sb.ENOTFOUND, "no such call for this operator")
		}
		route, _, err := sb.ParseSIPURI(t.URI)
		if err != nil {
			return err
		}
		ctx, cancel := dbContext(s.ctx)
		err = s.allowDial(ctx, a.conn.TenantID(), route)
		cancel()
		if err != nil {
			return err
		}
	}
	return s.toCall(opID, callID, agentBusy, opMsg{kind: opTransfer, opID: opID, transfer: &t})
}

// TransferByAPI is TransferCall for an integration: the call is the
// tenant's, answered by an operator. Returns ECONFLICT if it is not
// answered by one.
func (s *Switch) TransferByAPI(tenantID, callID sb.ID, t sb.TransferTarget) error {
	s.mu.Lock()
	var opID *sb.ID
	for id, a := range s.agents {
		if a.callID == callID && a.state == agentBusy && a.conn.TenantID() == tenantID {
			opID = &id
			break
		}
	}
	s.mu.Unlock()
	if opID == nil {
		return sb.Errorf(sb.ECONFLICT, "the call is not in progress with an operator")
	}
	return s.TransferCall(*opID, callID, t)
}
