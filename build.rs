//! Embeds an rpath to the libpython pyo3 links against, so the binary runs from any folder
//! without `LD_LIBRARY_PATH` and never picks up another libpython with the same soname.

fn main() {
    // `Py_LIMITED_API` and friends, for the code that differs in the abi3 build (the wheel).
    pyo3_build_config::use_pyo3_cfgs();
    let config = pyo3_build_config::get();
    if let Some(lib_dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    for entry in ["python/graphward/host.py", "python/langgraph_sdk"] {
        println!("cargo:rerun-if-changed={entry}");
    }
}
