use std::time::Instant;
use tandem_server::hsm::{Hsm, HsmConfig, TokenPin, TransportKeySpec, provision_token};

fn main() {
    let module = std::env::current_exe()
        .unwrap()
        .ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("libtandem_hsm_sim.so"))
        .find(|p| p.is_file())
        .unwrap();
    let pin = || TokenPin::new("bench-user-pin".into());
    provision_token(
        &module,
        "bench",
        &TokenPin::new("bench-so-pin".into()),
        &pin(),
    )
    .unwrap();
    let hsm = Hsm::open(&HsmConfig {
        module_path: module,
        token_label: "bench".into(),
        user_pin: pin(),
    })
    .unwrap();
    hsm.ensure_objects(TransportKeySpec::EcP256).unwrap();
    let keys: Vec<_> = (0..12)
        .map(|_| hsm.generate_server_key(3072).unwrap())
        .collect();
    eprintln!("generated; pid {}", std::process::id());
    std::thread::sleep(std::time::Duration::from_secs(2));
    let t = Instant::now();
    for _ in 0..5 {
        for k in &keys {
            let mut x = k.modulus.clone();
            x[0] = 0;
            let t = Instant::now();
            hsm.sign_raw(&k.wrapped_private_key, &k.modulus, &x)
                .unwrap();
            eprint!("{:.2} ", t.elapsed().as_secs_f64() * 1e3);
        }
        eprintln!();
    }
    println!("total {:?}", t.elapsed());
}
