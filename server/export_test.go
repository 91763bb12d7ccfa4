package server

// OnJoin makes s call f whenever an upgrade request joins one already
// running in this process, before it waits for it.
func OnJoin(s *Server, f func()) { s.onJoin = f }
