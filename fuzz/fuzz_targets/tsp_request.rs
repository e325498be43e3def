//! RFC 3161 time-stamp requests as the TSA receives them (the body of `POST /tsa`), parsed
//! by `pki::tsp::parse_time_stamp_request`; a refused one is answered by
//! `time_stamp_rejection`.
//!
//! Properties: nothing panics; an accepted request is at most `MAX_TSP_REQUEST_BYTES`, its
//! imprint has the length of its hash, its policy is ours or absent, its nonce at most 32
//! bytes; a rejection reply is one DER value with nothing after it.

#![no_main]

use der::Decode;
use der::asn1::ObjectIdentifier;
use libfuzzer_sys::fuzz_target;
use tandem_server::pki::tsp::{
    MAX_TSP_REQUEST_BYTES, TspRequestError, parse_time_stamp_request, time_stamp_rejection,
};

/// The default policy: `<policy_arc>.2.1` under the default arc.
const POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.1.2.1");

fuzz_target!(|data: &[u8]| {
    match parse_time_stamp_request(data, POLICY) {
        Ok(q) => {
            assert!(data.len() <= MAX_TSP_REQUEST_BYTES);
            assert_eq!(q.imprint.len(), q.hash.digest_len(), "imprint length");
            assert!(q.policy.is_none_or(|p| p == POLICY), "foreign policy accepted");
            assert!(q.nonce.as_ref().is_none_or(|n| n.len() <= 32), "nonce length");
        }
        Err(TspRequestError::Rejected { failure, reason }) => {
            let reply = time_stamp_rejection(failure, reason);
            der::asn1::Any::from_der(&reply).expect("a rejection is one DER value");
        }
        Err(TspRequestError::NotATimeStampReq(_)) => {}
    }
});
