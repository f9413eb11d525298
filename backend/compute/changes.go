package compute

import (
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/events"
)

// changeFeedWindow is how far back each look at the instances table
// reaches. Timestamps are RFC 3339 with trimmed fractions, which sort
// correctly only to the second, so the feed asks for everything since a
// whole second well before its last look and drops what it has seen.
const changeFeedWindow = 3 * time.Second

// changeFeed publishes an instance event for every instance whose row
// changed (every write sets updated_at): builds, actions, agent reports,
// deletions. Reading the table, rather than hooking each of the many
// transactions that change an instance, means no change is ever missed,
// and it keeps working when several controllers share one database (the
// scale-out store): each sees the others' changes too.
func (s *Service) changeFeed() {
	defer s.wg.Done()
	seen := map[string]string{} // uuid → updated_at last published
	t := time.NewTicker(s.cfg.ChangeFeedInterval)
	defer t.Stop()
	// Changes before the feed started are not news.
	since := s.now().Add(-changeFeedWindow)
	first := true
	for {
		look := s.now()
		rows, err := s.db.QueryContext(s.ctx, `SELECT uuid, project_id, deleted, updated_at FROM instances WHERE updated_at >= ?`,
			since.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z"))
		if err == nil {
			var evs []events.Event
			fresh := map[string]string{}
			for rows.Next() {
				var id, project, updated string
				var deleted int
				if rows.Scan(&id, &project, &deleted, &updated) != nil {
					continue
				}
				fresh[id] = updated
				if seen[id] != updated && !first {
					evs = append(evs, events.Event{Kind: events.KindInstance, ID: id, ProjectID: project, Deleted: deleted != 0})
				}
			}
			rows.Close()
			// Forget what fell out of the window; its next change is news.
			seen = fresh
			for _, e := range evs {
				s.cfg.Events.Publish(e)
			}
			since = look.Add(-changeFeedWindow)
			first = false
		} else if s.ctx.Err() == nil {
			s.log.Warn("instance change feed", "err", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}
