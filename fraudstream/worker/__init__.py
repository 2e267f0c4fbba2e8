"""The Faust shell around the core: app, agent, batch handler, state, web views, supervision."""
