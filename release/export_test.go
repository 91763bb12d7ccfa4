package release

// Crash stops the heartbeat without deregistering, as when the process
// is killed: the registration stays until it expires.
func (r *Registration) Crash() {
	r.once.Do(func() {
		close(r.stop)
		<-r.done
	})
}
