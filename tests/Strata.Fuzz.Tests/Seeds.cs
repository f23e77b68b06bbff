namespace Strata.Fuzz.Tests;

/// <summary>Valid inputs the mutations start from: the files of the stories260K model kept in the repository.</summary>
internal static class Seeds
{
    public static string ModelDir { get; } = Find();

    public static string Read(string file) => File.ReadAllText(Path.Combine(ModelDir, file));

    // A Llama 3 style config: rope scaling, eos list, explicit head_dim.
    public const string Llama3Config = """
        {"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
         "num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"vocab_size":300,"max_position_embeddings":1024,
         "hidden_act":"silu","rms_norm_eps":1e-5,"rope_theta":500000.0,"attention_bias":false,"tie_word_embeddings":false,
         "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
         "original_max_position_embeddings":8192},"bos_token_id":1,"eos_token_id":[2,3],"torch_dtype":"bfloat16"}
        """;

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "models", "stories260K");
            if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
        }
        throw new InvalidOperationException("models/stories260K not found above the test binaries");
    }
}
