package cron

import "time"

// NextTick returns the first tick of b's schedule after t.
func NextTick(b *Binding, t time.Time) time.Time { return b.sched.Next(t) }
