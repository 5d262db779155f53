//! rampart-mock
