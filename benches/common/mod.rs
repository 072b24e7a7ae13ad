//! What the benchmarks share: the config they load.

/// The text of a config of `workspaces` workspaces, 14 names each (one
/// instance and one online endpoint), with the upstream on loopback (never
/// contacted). `benches/table.sh` writes the same shape.
pub fn config_text(workspaces: usize) -> String {
    let mut text = String::from("[upstream]\nservers = [\"127.0.0.1:9\"]\n");
    for i in 0..workspaces {
        text += &format!(
            "[[workspace]]\nname = \"mlw-{i}\"\nid = \"{i:08x}-0000-4000-8000-000000000000\"\n\
             region = \"eastus\"\nip = \"10.{}.{}.5\"\ninstances = [\"ci-{i}\"]\n\
             online_endpoints = [\"ep-{i}\"]\n",
            i / 250,
            i % 250
        );
    }
    text
}
