namespace Strata.Models.Tokenization;

/// <summary>
/// What the files around the tokenizer say about BOS, EOS and stopping: <c>tokenizer_config.json</c>,
/// <c>special_tokens_map.json</c>, <c>config.json</c> and <c>generation_config.json</c>, each optional.
/// </summary>
internal sealed record SpecialTokenSettings
{
    /// <summary>BOS token text from tokenizer_config.json, else special_tokens_map.json.</summary>
    public string? BosToken { get; init; }
    /// <summary>EOS token text, same sources.</summary>
    public string? EosToken { get; init; }
    /// <summary>tokenizer_config.json's <c>add_bos_token</c>, when given.</summary>
    public bool? AddBos { get; init; }
    /// <summary>tokenizer_config.json's <c>add_eos_token</c>, when given.</summary>
    public bool? AddEos { get; init; }
    /// <summary>config.json's <c>bos_token_id</c>.</summary>
    public int? ConfigBosId { get; init; }
    /// <summary>config.json's <c>eos_token_id</c> (an int or a list).</summary>
    public IReadOnlyList<int> ConfigEosIds { get; init; } = [];
    /// <summary>generation_config.json's <c>eos_token_id</c>, or null when the file or field is absent.</summary>
    public IReadOnlyList<int>? GenerationEosIds { get; init; }

    public static SpecialTokenSettings Read(string modelDir)
    {
        var settings = new SpecialTokenSettings();
        string map = Path.Combine(modelDir, "special_tokens_map.json");
        if (File.Exists(map))
        {
            using var doc = TokenizerJson.Parse(map);
            var json = new TokenizerJson(map);
            settings = settings with
            {
                BosToken = json.TokenName(TokenizerJson.Prop(doc.RootElement, "bos_token"), "bos_token"),
                EosToken = json.TokenName(TokenizerJson.Prop(doc.RootElement, "eos_token"), "eos_token"),
            };
        }
        string tokConfig = Path.Combine(modelDir, "tokenizer_config.json");
        if (File.Exists(tokConfig))
        {
            // tokenizer_config.json is what transformers reads first, so it wins over special_tokens_map.json.
            using var doc = TokenizerJson.Parse(tokConfig);
            var json = new TokenizerJson(tokConfig);
            var root = doc.RootElement;
            settings = settings with
            {
                BosToken = json.TokenName(TokenizerJson.Prop(root, "bos_token"), "bos_token") ?? settings.BosToken,
                EosToken = json.TokenName(TokenizerJson.Prop(root, "eos_token"), "eos_token") ?? settings.EosToken,
                AddBos = TokenizerJson.Prop(root, "add_bos_token") is { } ab ? json.Bool(ab, "add_bos_token", false) : null,
                AddEos = TokenizerJson.Prop(root, "add_eos_token") is { } ae ? json.Bool(ae, "add_eos_token", false) : null,
            };
        }
        string config = Path.Combine(modelDir, "config.json");
        if (File.Exists(config))
        {
            using var doc = TokenizerJson.Parse(config);
            var json = new TokenizerJson(config);
            settings = settings with
            {
                ConfigBosId = json.OptInt(TokenizerJson.Prop(doc.RootElement, "bos_token_id"), "bos_token_id"),
                ConfigEosIds = json.IntOrList(TokenizerJson.Prop(doc.RootElement, "eos_token_id"), "eos_token_id"),
            };
        }
        string generation = Path.Combine(modelDir, "generation_config.json");
        if (File.Exists(generation))
        {
            using var doc = TokenizerJson.Parse(generation);
            var json = new TokenizerJson(generation);
            if (TokenizerJson.Prop(doc.RootElement, "eos_token_id") is { } eos)
                settings = settings with { GenerationEosIds = json.IntOrList(eos, "eos_token_id") };
        }
        return settings;
    }

    /// <summary>The BOS id: the tokenizer's BOS token, else config.json's <c>bos_token_id</c>.</summary>
    public int? ResolveBos(Func<string, int?> idOf) => (BosToken is null ? null : idOf(BosToken)) ?? ConfigBosId;

    /// <summary>The tokenizer's EOS token id (what <c>add_eos_token</c> appends), if it has one.</summary>
    public int? ResolveEos(Func<string, int?> idOf) => EosToken is null ? null : idOf(EosToken);

    /// <summary>
    /// Stop ids: generation_config.json's when present (HF's generate() uses them; stories260K lists [2, 1] because
    /// the model ends a story with BOS), else config.json's, else the tokenizer's EOS.
    /// </summary>
    public IReadOnlyList<int> ResolveStopIds(Func<string, int?> idOf)
    {
        IReadOnlyList<int> ids = GenerationEosIds is { Count: > 0 } gen ? gen
            : ConfigEosIds.Count > 0 ? ConfigEosIds
            : ResolveEos(idOf) is int eos ? [eos] : [];
        return ids.Distinct().ToArray();
    }

    /// <summary>
    /// Refuses a BOS or stop id outside the vocabulary (ids the tokenizer would hand to the model's embedding); the
    /// error names the file and field the id came from.
    /// </summary>
    public void CheckIds(string modelDir, int? bos, IReadOnlyList<int> stops, int vocabSize)
    {
        if (bos is int b && (uint)b >= (uint)vocabSize)
            throw new ModelFormatException(Path.Combine(modelDir, "config.json"), "bos_token_id", $"{b} is outside the vocabulary (size {vocabSize})");
        foreach (int id in stops)
        {
            if ((uint)id < (uint)vocabSize) continue;
            string file = GenerationEosIds is { Count: > 0 } ? "generation_config.json" : "config.json";
            throw new ModelFormatException(Path.Combine(modelDir, file), "eos_token_id", $"{id} is outside the vocabulary (size {vocabSize})");
        }
    }

    /// <summary>
    /// Applies <c>add_bos_token</c>/<c>add_eos_token</c> to the post-processor's special prefix and suffix, as
    /// transformers' LlamaTokenizerFast rebuilds its template from them; absent flags leave the template alone.
    /// </summary>
    public (int[] Prefix, int[] Suffix) AdjustTemplate(IReadOnlyList<int> prefix, IReadOnlyList<int> suffix, int? bos, int? eos)
    {
        var pre = prefix.ToList();
        var post = suffix.ToList();
        if (AddBos is bool addBos && bos is int b)
        {
            pre.Remove(b);
            if (addBos) pre.Insert(0, b);
        }
        if (AddEos is bool addEos && eos is int e)
        {
            post.Remove(e);
            if (addEos) post.Add(e);
        }
        return ([.. pre], [.. post]);
    }
}
