package host

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/delivery"
	"github.com/wapr-dev/wapr/host/internal/resources"
)

// reloadDebounce lets editors and copies finish writing before a reload.
const reloadDebounce = 300 * time.Millisecond

// watch reloads the resources folders whenever a YAML or .wasm file in
// them changes, until Shutdown.
func (h *Host) watch() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching the resources folders: %w", err)
	}
	for _, dir := range h.opts.ResourcesPaths {
		if err := w.Add(dir); err != nil {
			w.Close()
			return fmt.Errorf("watching %s: %w", dir, err)
		}
	}
	h.watchDone = make(chan struct{})
	go func() {
		defer close(h.watchDone)
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				switch strings.ToLower(filepath.Ext(ev.Name)) {
				case ".yaml", ".yml", ".wasm":
					timer.Reset(reloadDebounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				h.log.Warn("watching the resources folders", "error", err)
			case <-timer.C:
				h.Reload(h.stopCtx)
			case <-h.stopCtx.Done():
				timer.Stop()
				return
			}
		}
	}()
	return nil
}

// Reload re-reads the resources folders and applies the differences with
// create-then-swap: a new or changed component is initialised beside the
// old one and swapped in atomically; the old one then drains (its calls in
// flight finish) and closes; a removed one drains and closes. A change that
// fails to load leaves the previous version serving, and the failure shows
// in the metadata API and the log. Subscriptions on a replaced broker stop
// at a poll boundary (unacknowledged messages stay with the broker) and
// restart on the new one.
func (h *Host) Reload(ctx context.Context) {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	if h.stopCtx.Err() != nil {
		return
	}
	comps, subs, failed := h.readResources(ctx)
	current := map[string]*loaded{}
	for _, l := range h.components {
		current[l.res.Name] = l
	}
	started, fails := h.startChanged(ctx, comps, current)
	for _, c := range comps {
		err := fails[c.Name]
		if err == nil {
			continue
		}
		msg := err.Error()
		if current[c.Name] != nil {
			msg = "reload failed (the previous version keeps serving): " + msg
		}
		failed = append(failed, api.FailedComponent{Name: c.Name, Type: c.Type, File: c.File, Error: msg})
		h.log.Error("component change not applied", "name", c.Name, "type", c.Type, "error", err)
	}
	var next, retired []*loaded
	wanted := map[string]bool{}
	for _, c := range comps {
		wanted[c.Name] = true
		switch l, old := started[c.Name], current[c.Name]; {
		case l != nil:
			next = append(next, l)
			if old != nil {
				retired = append(retired, old)
			}
			h.log.Info("component loaded", "name", c.Name, "type", c.Type, "served", describeServed(l.served), "replaces", old != nil)
		case old != nil:
			next = append(next, old)
		}
	}
	for name, old := range current {
		if !wanted[name] {
			retired = append(retired, old)
			h.log.Info("component removed", "name", name, "type", old.res.Type)
		}
	}
	h.components = next
	h.publish(failed)
	h.reloadActors()

	h.resubscribe(retired, subs)

	// The old versions drain (calls in flight finish) and close.
	for _, old := range retired {
		old.gate.Retire()
		closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		if err := old.impl.Close(closeCtx); err != nil {
			h.log.Warn("closing a replaced component", "name", old.res.Name, "error", err)
		}
		cancel()
	}
	h.freeLoadingMemory()
}

// changed reports whether c differs from what old was started from: its
// declaration, or the Wasm module that provides its type.
func (h *Host) changed(old *loaded, c resources.Component) bool {
	a, b := old.res, c
	a.File, b.File = "", ""
	if !reflect.DeepEqual(a, b) {
		return true
	}
	digest := ""
	if m := h.wasmModules[c.Type]; m != nil {
		digest = m.Digest
	}
	return digest != old.module
}

// resubscribe restarts the subscriptions of replaced or removed brokers and
// applies changes to the declared subscriptions.
func (h *Host) resubscribe(retired []*loaded, declared []resources.Subscription) {
	declChanged := !reflect.DeepEqual(stripFiles(h.declared), stripFiles(declared))
	h.declared = declared
	if h.delivery == nil {
		return
	}
	gone := map[string]bool{}
	for _, old := range retired {
		if strings.HasPrefix(old.res.Type, "pubsub.") {
			gone[old.res.Name] = true
		}
	}
	if len(gone) == 0 && !declChanged {
		return
	}
	stop := func(s delivery.Subscription) bool {
		return gone[s.PubsubName] || (declChanged && s.Type == delivery.TypeDeclarative)
	}
	var restart []delivery.Subscription
	for _, s := range h.delivery.Active() {
		if s.Type == delivery.TypeProgrammatic && stop(s) {
			restart = append(restart, s)
		}
	}
	for _, s := range declared {
		d := delivery.Subscription{Subscription: s, Type: delivery.TypeDeclarative}
		if declChanged || gone[s.PubsubName] {
			restart = append(restart, d)
		}
	}
	for _, err := range h.delivery.Replace(stop, restart) {
		h.log.Warn("subscription not restarted", "error", err)
	}
	h.mu.Lock()
	h.report.Subscriptions = h.delivery.Info()
	h.mu.Unlock()
}

func stripFiles(subs []resources.Subscription) []resources.Subscription {
	out := make([]resources.Subscription, len(subs))
	for i, s := range subs {
		s.File = ""
		s.Metadata = maps.Clone(s.Metadata)
		out[i] = s
	}
	return out
}
