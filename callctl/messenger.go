package callctl

import (
	"context"
	"errors"

	sb "github.com/switchboard-voice/switchboard"
)

// dialMessenger places an operator's call to a messenger user through
// the tenant's connection; what follows (ringing, the answer, a refusal)
// is the placing phase's, as for a trunk. The platform's refusal is
// recorded with its own error code, a missing permission as such.
func (r *callRun) dialMessenger(ctx context.Context) phase {
	r.create(ctx)
	r.event(sb.EventDialing, map[string]any{"operator_id": r.ag.conn.OperatorID(), "channel": r.c.Channel})
	leg, err := r.s.messenger.DialMessenger(ctx, r.c.TenantID, r.c.Channel, r.c.To)
	if err != nil {
		var me *sb.MessengerError
		switch {
		case errors.As(err, &me) && me.NoPermission():
			r.c.APIErrorCode = me.Code
			reason := "the WhatsApp user has not given the business permission to call them"
			r.event(sb.EventRejected, map[string]any{"api_error_code": me.Code, "reason": reason})
			r.over(ending{by: sb.PartyCaller, status: sb.CallRejected, reason: reason, failLeg: sb.FailedOnTrunk, failStage: sb.StageRouting})
		case errors.As(err, &me):
			r.c.APIErrorCode = me.Code
			r.event(sb.EventTrunkFailed, map[string]any{"api_error_code": me.Code, "http_status": me.Status, "reason": me.Message})
			r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: r.c.Channel + " refused the call: " + me.Message,
				failLeg: sb.FailedOnTrunk, failStage: sb.StageRouting})
		default:
			r.log.Warn("messenger call not placed", "err", err)
			r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: "the call could not be placed: " + sb.ErrorMessage(err),
				failLeg: sb.FailedOnService, failStage: sb.StageRouting})
		}
		return nil
	}
	via := leg.ConnectionID()
	r.leg, r.c.ExternalRef, r.c.Source, r.c.TrunkID = leg, leg.ExternalRef(), r.c.Channel, &via
	r.update(ctx)
	return r.placing
}
