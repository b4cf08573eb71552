//! One named scenario per Byzantine behaviour, and the Twins sweeps.
