package api

import (
	"context"
	"regexp"

	sb "github.com/switchboard-voice/switchboard"
)

// Pages show people, keys, trunks and queues by name, never by a bare ID:
// the API answers the names with the IDs (tenant-scoped, one query per
// answer), and a page says "deleted person" (or the like) for an ID left
// unnamed.

// names names ids in the actor's tenant. Without a namer, or when it
// fails, the IDs go unnamed: the read they decorate still answers.
func (s *Server) names(ctx context.Context, ids []sb.ID) map[sb.ID]string {
	if s.deps.Names == nil || len(ids) == 0 {
		return map[sb.ID]string{}
	}
	n, err := s.deps.Names.Names(ctx, ids)
	if err != nil {
		s.log.Warn("naming people and resources", "err", err)
		return map[sb.ID]string{}
	}
	return n
}

// nameOf is id's name in names, "" for none or nil.
func nameOf(names map[sb.ID]string, id *sb.ID) string {
	if id == nil {
		return ""
	}
	return names[*id]
}

// ids gathers the non-nil IDs.
func ids(in ...*sb.ID) []sb.ID {
	out := make([]sb.ID, 0, len(in))
	for _, id := range in {
		if id != nil {
			out = append(out, *id)
		}
	}
	return out
}

// uuidPattern finds IDs inside free text: a timeline's "by": "user <id>".
var uuidPattern = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// idsIn gathers the IDs in a timeline's details: values that are IDs, or
// strings holding one, at any depth.
func idsIn(v any, out []sb.ID) []sb.ID {
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			out = idsIn(x, out)
		}
	case []any:
		for _, x := range v {
			out = idsIn(x, out)
		}
	case string:
		for _, m := range uuidPattern.FindAllString(v, 4) {
			if id, err := sb.ParseID(m); err == nil {
				out = append(out, id)
			}
		}
	case sb.ID:
		out = append(out, v)
	}
	return out
}

// namedAudit are copies of entries with their actor and resource named,
// in the tenant's own people and resources only: a service desk engineer
// from another tenant, or a key revoked since, stays unnamed.
func (s *Server) namedAudit(ctx context.Context, entries []*sb.AuditEntry) []*sb.AuditEntry {
	var mentioned []sb.ID
	resources := make([]*sb.ID, len(entries))
	for i, e := range entries {
		mentioned = append(mentioned, ids(e.ActorUserID, e.ActorKeyID)...)
		if id, err := sb.ParseID(e.ResourceID); err == nil {
			resources[i] = &id
			mentioned = append(mentioned, id)
		}
	}
	names := s.names(ctx, mentioned)
	out := make([]*sb.AuditEntry, len(entries))
	for i, e := range entries {
		named := *e
		named.ActorName = nameOf(names, e.ActorUserID)
		if named.ActorName == "" {
			named.ActorName = nameOf(names, e.ActorKeyID)
		}
		named.ResourceName = nameOf(names, resources[i])
		out[i] = &named
	}
	return out
}
