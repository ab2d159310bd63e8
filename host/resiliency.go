package host

import (
	"errors"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/resiliency"
	"github.com/wapr-dev/wapr/host/internal/resources"
)

// loadResiliency puts the Resiliency resources docs in force (at start and
// on every reload); the next snapshot applies them. A resource with a
// problem is left out and reported, as a component is, and the others
// apply. Circuit breakers whose definition did not change keep their state.
func (h *Host) loadResiliency(docs []resources.Resiliency) []api.FailedComponent {
	p, errs := resiliency.Load(docs, h.policies.Load(), h.log)
	var failed []api.FailedComponent
	for _, err := range errs {
		h.log.Error("resiliency resource not loaded", "error", err)
		f := api.FailedComponent{Error: err.Error()}
		var re *resources.Error
		if errors.As(err, &re) {
			f.Name, f.File = re.Name, re.File
		}
		failed = append(failed, f)
	}
	if p != nil {
		h.log.Info("resiliency policies in force", "resources", p.Names)
		for _, u := range p.Unused {
			h.log.Warn("part of a Resiliency resource wapr does not act on; ignored", "part", u)
		}
	}
	h.policies.Store(p)
	return failed
}
