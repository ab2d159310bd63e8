// Package daprlog quiets the loggers of the Dapr packages wapr embeds (the
// placement and scheduler servers): their progress is wapr's to report,
// through slog.
package daprlog

import (
	"sync"

	"github.com/dapr/kit/logger"
)

var once sync.Once

// Quiet turns Dapr's own loggers (logrus, on stdout) down to errors, once
// per process. The scheduler's embedded etcd logs through zap at its own
// level, which the scheduler package sets.
func Quiet() {
	once.Do(func() {
		o := logger.DefaultOptions()
		_ = o.SetOutputLevel("error")
		_ = logger.ApplyOptionsToLoggers(&o)
	})
}
